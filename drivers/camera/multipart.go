package camera

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
)

// Errors of the MJPEG part parser. ErrPartTooLarge and ErrCorruptPart are about one part:
// the stream goes on with the next one (IsSkippable). The others end the connection.
var (
	ErrNoBoundary   = errors.New("camera: no multipart boundary")
	ErrPartTooLarge = errors.New("camera: frame larger than camera.max_frame_bytes")
	ErrCorruptPart  = errors.New("camera: corrupt frame")
	ErrBadPart      = errors.New("camera: malformed multipart part")
)

// IsSkippable says whether err is about one part only, so the stream can go on.
func IsSkippable(err error) bool {
	return errors.Is(err, ErrPartTooLarge) || errors.Is(err, ErrCorruptPart)
}

// Bounds of a part's header block.
const (
	maxHeaderLine  = 1024
	maxHeaderLines = 32
	// maxDeclared is the largest Content-Length taken as a number at all; a larger one is a
	// malformed part, not a large frame to skip.
	maxDeclared = 1 << 30
)

// Boundary returns the boundary of a multipart Content-Type, e.g.
// "multipart/x-mixed-replace; boundary=frame". It is lenient as cameras are: a quoted value,
// a value with its leading "--", a header mime cannot parse. An empty result with a nil
// error is a multipart type without a boundary (NewPartReader then learns it from the
// stream's first delimiter line).
func Boundary(contentType string) (string, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err == nil {
		if !strings.HasPrefix(mt, "multipart/") {
			return "", fmt.Errorf("%w: the stream is %q, not multipart", ErrNoBoundary, mt)
		}
		return params["boundary"], nil
	}
	low := strings.ToLower(contentType)
	if !strings.HasPrefix(strings.TrimSpace(low), "multipart/") {
		return "", fmt.Errorf("%w: the stream's content type %q is not multipart", ErrNoBoundary, contentType)
	}
	i := strings.Index(low, "boundary=")
	if i < 0 {
		return "", nil
	}
	b := contentType[i+len("boundary="):]
	if j := strings.IndexAny(b, "; \t"); j >= 0 {
		b = b[:j]
	}
	return strings.Trim(b, `"`), nil
}

// PartReader splits a multipart/x-mixed-replace body into JPEG frames. Each part may or may
// not carry a Content-Length; without one, the part ends at the next delimiter line. Memory
// is bounded by max (a part larger is skipped, ErrPartTooLarge); the search for a delimiter
// is bounded by max bytes too (ErrNoBoundary). Time is not bounded here: the stream's stall
// watchdog closes a connection that stops delivering frames.
type PartReader struct {
	br     *bufio.Reader
	delims [][]byte // lines that delimit parts: "--B", and "B" when B itself starts with "--"
	max    int
}

// NewPartReader reads parts of at most max bytes from r. An empty boundary is learnt from
// the first line that starts with "--".
func NewPartReader(r io.Reader, boundary string, max int) *PartReader {
	p := &PartReader{br: bufio.NewReaderSize(r, 64<<10), max: max}
	p.setBoundary(boundary)
	return p
}

func (p *PartReader) setBoundary(b string) {
	p.delims = nil
	if b == "" {
		return
	}
	p.delims = append(p.delims, []byte("--"+b))
	if strings.HasPrefix(b, "--") {
		p.delims = append(p.delims, []byte(b))
	}
}

// delimiter reports whether line (a whole line, or the start of one) is a delimiter, and
// whether it is the closing one ("--B--").
func (p *PartReader) delimiter(line []byte) (ok, closing bool) {
	for _, d := range p.delims {
		if bytes.HasPrefix(line, d) {
			rest := line[len(d):]
			return true, bytes.HasPrefix(rest, []byte("--"))
		}
	}
	return false, false
}

// Next returns the next frame's bytes. io.EOF ends the stream (a closing delimiter or the
// end of the body). An error for which IsSkippable is true leaves the reader ready for the
// part after; any other error leaves the reader unusable.
func (p *PartReader) Next() ([]byte, error) {
	if err := p.seekDelimiter(); err != nil {
		return nil, err
	}
	length, ctype, err := p.headers()
	if err != nil {
		return nil, err
	}
	var body []byte
	if length >= 0 {
		body, err = p.readLength(length)
	} else {
		body, err = p.readToDelimiter()
	}
	if err != nil {
		return nil, err
	}
	if ctype != "" && !isJPEGType(ctype) {
		return nil, fmt.Errorf("%w: part of type %q", ErrCorruptPart, ctype)
	}
	body = trimFrame(body)
	if !IsJPEG(body) || !bytes.HasSuffix(body, []byte{0xFF, 0xD9}) {
		return nil, fmt.Errorf("%w: %d bytes without JPEG start and end markers", ErrCorruptPart, len(body))
	}
	return body, nil
}

func isJPEGType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(ct))
	}
	return mt == "image/jpeg" || mt == "image/jpg" || mt == "image/pjpeg" || mt == "application/octet-stream"
}

// trimFrame drops the padding some cameras leave after the EOI marker.
func trimFrame(b []byte) []byte {
	return bytes.TrimRight(b, "\r\n\x00 \t")
}

// seekDelimiter reads up to and including the next delimiter line, discarding at most max
// bytes before it.
func (p *PartReader) seekDelimiter() error {
	discarded := 0
	for {
		line, err := p.readLine(&discarded)
		if err != nil {
			return err // io.EOF: the stream ended
		}
		if p.delims == nil && bytes.HasPrefix(line, []byte("--")) {
			p.setBoundary(string(bytes.TrimRight(line[2:], "\r\n \t")))
		}
		if ok, closing := p.delimiter(line); ok {
			if closing {
				return io.EOF
			}
			return nil
		}
		if discarded > p.max {
			return fmt.Errorf("%w: none in %d bytes", ErrNoBoundary, discarded)
		}
	}
}

// readLine returns the start of the next line (at most 128 bytes of it, enough to tell a
// delimiter) and discards the rest; *n counts the bytes consumed.
func (p *PartReader) readLine(n *int) ([]byte, error) {
	var head []byte
	for {
		chunk, err := p.br.ReadSlice('\n')
		*n += len(chunk)
		if len(head) < 128 {
			head = append(head, chunk[:min(len(chunk), 128-len(head))]...)
		}
		switch {
		case err == nil:
			return head, nil
		case errors.Is(err, bufio.ErrBufferFull):
			if *n > p.max {
				return head, nil // seekDelimiter gives up
			}
			continue
		case errors.Is(err, io.EOF) && len(chunk) > 0:
			return head, nil
		default:
			return nil, err
		}
	}
}

// headers reads a part's header block. length is -1 when the part has no Content-Length.
// A part that starts with the JPEG marker right after the delimiter has no headers.
func (p *PartReader) headers() (length int64, ctype string, err error) {
	length = -1
	if b, _ := p.br.Peek(2); len(b) == 2 && b[0] == 0xFF && b[1] == 0xD8 {
		return length, "", nil
	}
	for i := 0; ; i++ {
		if i == maxHeaderLines {
			return 0, "", fmt.Errorf("%w: more than %d header lines", ErrBadPart, maxHeaderLines)
		}
		line, err := p.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxHeaderLine {
			return 0, "", fmt.Errorf("%w: a header line longer than %d bytes", ErrBadPart, maxHeaderLine)
		}
		if err != nil {
			return 0, "", fmt.Errorf("camera: part headers: %w", eofUnexpected(err))
		}
		s := strings.TrimRight(string(line), "\r\n")
		if s == "" {
			return length, ctype, nil
		}
		k, v, ok := strings.Cut(s, ":")
		if !ok {
			return 0, "", fmt.Errorf("%w: a header line without a colon", ErrBadPart)
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "content-length":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || n > maxDeclared {
				return 0, "", fmt.Errorf("%w: Content-Length %q", ErrBadPart, trunc(v))
			}
			length = n
		case "content-type":
			ctype = v
		}
	}
}

func trunc(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

func eofUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readLength reads a part of a declared length; one larger than max is discarded.
func (p *PartReader) readLength(n int64) ([]byte, error) {
	if n > int64(p.max) {
		if _, err := io.CopyN(io.Discard, p.br, n); err != nil {
			return nil, fmt.Errorf("camera: skip a part: %w", eofUnexpected(err))
		}
		return nil, fmt.Errorf("%w: %d bytes declared, limit %d", ErrPartTooLarge, n, p.max)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(p.br, body); err != nil {
		return nil, fmt.Errorf("camera: read a part: %w", eofUnexpected(err))
	}
	return body, nil
}

// readToDelimiter reads a part that has no Content-Length: up to the line break before the
// next delimiter line. One larger than max is discarded up to that delimiter.
func (p *PartReader) readToDelimiter() ([]byte, error) {
	longest := 0
	for _, d := range p.delims {
		longest = max(longest, len(d))
	}
	var body []byte
	n := 0
	for {
		chunk, err := p.br.ReadSlice('\n')
		n += len(chunk)
		if n <= p.max+2 {
			body = append(body, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("camera: read a part: %w", eofUnexpected(err))
		}
		next, _ := p.br.Peek(longest)
		if ok, _ := p.delimiter(next); !ok {
			if n > p.max+2 && n > 2*p.max+(64<<10) {
				// Keep skipping, but not for ever: this is as far as a boundary is sought.
				return nil, fmt.Errorf("%w: none in %d bytes", ErrNoBoundary, n)
			}
			continue
		}
		if n > p.max+2 {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrPartTooLarge, n, p.max)
		}
		body = bytes.TrimSuffix(body, []byte("\n"))
		return bytes.TrimSuffix(body, []byte("\r")), nil
	}
}
