package camera

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// jpegOf returns a JPEG-shaped frame of n bytes (SOI ... EOI) whose body is tag.
func jpegOf(tag string, n int) []byte {
	b := append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, []byte(tag)...)
	for len(b) < n-2 {
		b = append(b, byte('a'+len(b)%26))
	}
	return append(b, 0xFF, 0xD9)
}

// part formats one part; length < 0 leaves out Content-Length.
func part(boundary string, body []byte, length int, ctype string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "--%s\r\n", boundary)
	if ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ctype)
	}
	if length >= 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", length)
	}
	b.WriteString("\r\n")
	b.Write(body)
	b.WriteString("\r\n")
	return b.String()
}

func readAll(pr *PartReader) (frames [][]byte, skipped []error, end error) {
	for {
		b, err := pr.Next()
		switch {
		case err == nil:
			frames = append(frames, b)
		case IsSkippable(err):
			skipped = append(skipped, err)
		default:
			return frames, skipped, err
		}
	}
}

func TestPartReader(t *testing.T) {
	a, b := jpegOf("A", 300), jpegOf("B", 500)
	huge := jpegOf("H", 5000)
	tests := []struct {
		name      string
		boundary  string
		stream    string
		max       int
		frames    int
		skipped   []error
		end       error
		firstBody []byte
	}{
		{name: "with lengths", boundary: "frame", stream: part("frame", a, len(a), "image/jpeg") + part("frame", b, len(b), "image/jpeg"),
			max: 1000, frames: 2, end: io.EOF, firstBody: a},
		{name: "without lengths", boundary: "frame", stream: part("frame", a, -1, "image/jpeg") + part("frame", b, -1, "image/jpeg") + "--frame--\r\n",
			max: 1000, frames: 2, end: io.EOF, firstBody: a},
		{name: "preamble and closing delimiter", boundary: "frame", stream: "junk before\r\n" + part("frame", a, len(a), "image/jpeg") + "--frame--\r\n" + part("frame", b, len(b), ""),
			max: 1000, frames: 1, end: io.EOF},
		{name: "boundary given with its dashes", boundary: "--myboundary", stream: part("--myboundary", a, len(a), "image/jpeg")[2:] + part("--myboundary", b, -1, "")[2:] + "--myboundary--\r\n",
			max: 1000, frames: 2, end: io.EOF},
		{name: "boundary with dashes, lines with more", boundary: "--myboundary", stream: part("--myboundary", a, len(a), "image/jpeg"),
			max: 1000, frames: 1, end: io.EOF},
		{name: "learnt boundary", boundary: "", stream: part("xyz", a, -1, "image/jpeg") + part("xyz", b, len(b), "image/jpeg"),
			max: 1000, frames: 2, end: io.EOF},
		{name: "no headers at all", boundary: "f", stream: "--f\r\n" + string(a) + "\r\n--f\r\n" + string(b) + "\r\n--f--\r\n",
			max: 1000, frames: 2, end: io.EOF},
		{name: "LF only", boundary: "f", stream: strings.ReplaceAll(part("f", a, -1, "image/jpeg"), "\r\n", "\n") + "--f--\n",
			max: 1000, frames: 1, end: io.EOF},
		{name: "huge part with length is skipped", boundary: "f", stream: part("f", huge, len(huge), "image/jpeg") + part("f", a, len(a), "image/jpeg"),
			max: 1000, frames: 1, skipped: []error{ErrPartTooLarge}, end: io.EOF, firstBody: a},
		{name: "huge part without length is skipped", boundary: "f", stream: part("f", huge, -1, "image/jpeg") + part("f", a, -1, "image/jpeg") + "--f--\r\n",
			max: 1000, frames: 1, skipped: []error{ErrPartTooLarge}, end: io.EOF, firstBody: a},
		{name: "corrupt part is skipped", boundary: "f", stream: part("f", []byte("GIF89a..."), 9, "image/jpeg") + part("f", a, len(a), "image/jpeg"),
			max: 1000, frames: 1, skipped: []error{ErrCorruptPart}, end: io.EOF},
		{name: "truncated jpeg is corrupt", boundary: "f", stream: part("f", a[:100], 100, "image/jpeg") + part("f", b, len(b), "image/jpeg"),
			max: 1000, frames: 1, skipped: []error{ErrCorruptPart}, end: io.EOF},
		{name: "wrong content type is corrupt", boundary: "f", stream: part("f", a, len(a), "text/html") + part("f", b, len(b), "image/jpeg"),
			max: 1000, frames: 1, skipped: []error{ErrCorruptPart}, end: io.EOF},
		{name: "wrong length recovers at the next delimiter", boundary: "f", stream: part("f", a, len(a)-40, "image/jpeg") + part("f", b, len(b), "image/jpeg"),
			max: 1000, frames: 1, skipped: []error{ErrCorruptPart}, end: io.EOF},
		{name: "never a boundary", boundary: "f", stream: strings.Repeat("x", 5000), max: 1000, end: ErrNoBoundary},
		{name: "never a boundary, one long line", boundary: "f", stream: strings.Repeat("x\r", 100000), max: 1000, end: ErrNoBoundary},
		{name: "body that never ends", boundary: "f", stream: "--f\r\n\r\n" + string(a) + strings.Repeat("yy\n", 30000), max: 1000, end: ErrNoBoundary},
		{name: "bad length", boundary: "f", stream: "--f\r\nContent-Length: -3\r\n\r\n", max: 1000, end: ErrBadPart},
		{name: "absurd length", boundary: "f", stream: "--f\r\nContent-Length: 99999999999999\r\n\r\n", max: 1000, end: ErrBadPart},
		{name: "header without colon", boundary: "f", stream: "--f\r\nbogus\r\n\r\n", max: 1000, end: ErrBadPart},
		{name: "header line too long", boundary: "f", stream: "--f\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n", max: 100000, end: ErrBadPart},
		{name: "too many headers", boundary: "f", stream: "--f\r\n" + strings.Repeat("X: y\r\n", 40) + "\r\n", max: 100000, end: ErrBadPart},
		{name: "cut in the headers", boundary: "f", stream: "--f\r\nContent-Type: ima", max: 1000, end: io.ErrUnexpectedEOF},
		{name: "cut in the body", boundary: "f", stream: "--f\r\nContent-Length: 300\r\n\r\n" + string(a[:100]), max: 1000, end: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frames, skipped, end := readAll(NewPartReader(strings.NewReader(tt.stream), tt.boundary, tt.max))
			if len(frames) != tt.frames {
				t.Errorf("%d frames, want %d", len(frames), tt.frames)
			}
			if len(skipped) != len(tt.skipped) {
				t.Errorf("skipped %v, want %v", skipped, tt.skipped)
			}
			for i := range min(len(skipped), len(tt.skipped)) {
				if !errors.Is(skipped[i], tt.skipped[i]) {
					t.Errorf("skip %d: %v, want %v", i, skipped[i], tt.skipped[i])
				}
			}
			if !errors.Is(end, tt.end) {
				t.Errorf("end %v, want %v", end, tt.end)
			}
			if tt.firstBody != nil && (len(frames) == 0 || !bytes.Equal(frames[0], tt.firstBody)) {
				t.Errorf("first frame is not the expected one")
			}
			for _, f := range frames {
				if len(f) > tt.max {
					t.Errorf("a frame of %d bytes passed a limit of %d", len(f), tt.max)
				}
			}
		})
	}
}

func TestBoundary(t *testing.T) {
	tests := []struct {
		ct, want string
		err      error
	}{
		{"multipart/x-mixed-replace; boundary=frame", "frame", nil},
		{`multipart/x-mixed-replace; boundary="my frame"`, "my frame", nil},
		{"multipart/x-mixed-replace;boundary=--123456789000000000000987654321", "--123456789000000000000987654321", nil},
		{"multipart/x-mixed-replace", "", nil},
		{"multipart/x-mixed-replace; boundary=a b; x", "a", nil}, // not parseable by mime: lenient
		{"image/jpeg", "", ErrNoBoundary},
		{"text/html; charset=utf-8", "", ErrNoBoundary},
		{"", "", ErrNoBoundary},
	}
	for _, tt := range tests {
		got, err := Boundary(tt.ct)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("Boundary(%q) = %q, %v; want %q, %v", tt.ct, got, err, tt.want, tt.err)
		}
	}
}
