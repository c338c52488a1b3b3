package scanner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/sentinel-edge/sentinel/sim/population"
)

// Errors of the package.
var (
	ErrBadEOL      = errors.New("scanner: bad end-of-line name")
	ErrExists      = errors.New("scanner: path exists and is not a symlink")
	ErrUnsupported = errors.New("scanner: pseudo-terminals are not supported on this system")
	ErrClosed      = errors.New("scanner: port closed")
)

// The end-of-line sequences a scanner may append to a scan.
var (
	EOLCRLF = []byte("\r\n")
	EOLCR   = []byte("\r")
	EOLLF   = []byte("\n")
)

// DefaultEOLName is the factory default of most serial scanners: a CR suffix.
const DefaultEOLName = "cr"

// ParseEOL maps "crlf", "cr" or "lf" to its bytes.
func ParseEOL(name string) ([]byte, error) {
	switch strings.ToLower(name) {
	case "crlf":
		return EOLCRLF, nil
	case "cr":
		return EOLCR, nil
	case "lf":
		return EOLLF, nil
	}
	return nil, fmt.Errorf("%w: want crlf, cr or lf, got %q", ErrBadEOL, name)
}

// Source yields tokens one by one. Next returns io.EOF after the last one,
// and ctx.Err() when ctx is done first.
type Source interface {
	Next(ctx context.Context) (string, error)
}

// LineSource streams tokens from a reader as lines arrive (stdin, a pipe):
// one token per line, a trailing CR removed, lines that are only white space
// skipped. Other white space is kept and sent.
type LineSource struct {
	lines chan string
	err   error // set before lines is closed
}

// NewLineSource starts reading r in a goroutine that ends at r's EOF or
// error; a Next that gave up on ctx does not stop it.
func NewLineSource(r io.Reader) *LineSource {
	s := &LineSource{lines: make(chan string)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 4096), 1<<20)
		for sc.Scan() {
			if tok, ok := cleanLine(sc.Text()); ok {
				s.lines <- tok
			}
		}
		s.err = sc.Err()
		close(s.lines)
	}()
	return s
}

// Next returns the next token.
func (s *LineSource) Next(ctx context.Context) (string, error) {
	select {
	case tok, ok := <-s.lines:
		if !ok {
			if s.err != nil {
				return "", fmt.Errorf("scanner: read tokens: %w", s.err)
			}
			return "", io.EOF
		}
		return tok, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// ListSource yields a list of tokens, cycling through it when a count above
// its length is asked for.
type ListSource struct {
	tokens []string
	count  int
	i      int
}

// NewListSource yields count tokens from tokens, starting over at the end
// of the list as needed; count 0 means each token once.
func NewListSource(tokens []string, count int) *ListSource {
	if count <= 0 {
		count = len(tokens)
	}
	if len(tokens) == 0 {
		count = 0
	}
	return &ListSource{tokens: tokens, count: count}
}

// Next returns the next token.
func (s *ListSource) Next(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if s.i >= s.count {
		return "", io.EOF
	}
	tok := s.tokens[s.i%len(s.tokens)]
	s.i++
	return tok, nil
}

// ReadTokens reads a whole token list with the rules of LineSource.
func ReadTokens(r io.Reader) ([]string, error) {
	var tokens []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		if tok, ok := cleanLine(sc.Text()); ok {
			tokens = append(tokens, tok)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scanner: read tokens: %w", err)
	}
	return tokens, nil
}

func cleanLine(line string) (string, bool) {
	line = strings.TrimSuffix(line, "\r")
	if strings.TrimSpace(line) == "" {
		return "", false
	}
	return line, true
}

// Options shape the scans Feed writes.
type Options struct {
	// Rate is the most scans per second; 0 means no limit.
	Rate float64
	// EOL follows every token; nil means EOLCR.
	EOL []byte
	// Count stops after this many scans; 0 means when the source ends.
	Count int
	// Logger gets one line per scan with the token masked; nil discards.
	Logger *slog.Logger
}

// Feed writes scans from src to w until src ends, opts.Count scans are
// written, or ctx is done, and returns how many it wrote. Each scan is one
// Write of the token and the EOL. The end of src is not an error; a done
// ctx returns ctx.Err().
func Feed(ctx context.Context, w io.Writer, src Source, opts Options) (int, error) {
	eol := opts.EOL
	if eol == nil {
		eol = EOLCR
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var interval time.Duration
	if opts.Rate > 0 {
		interval = time.Duration(float64(time.Second) / opts.Rate)
	}

	var n int
	var last time.Time
	for opts.Count <= 0 || n < opts.Count {
		tok, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if interval > 0 && !last.IsZero() {
			if err := sleepUntil(ctx, last.Add(interval)); err != nil {
				return n, err
			}
		}
		buf := make([]byte, 0, len(tok)+len(eol))
		buf = append(append(buf, tok...), eol...)
		if _, err := w.Write(buf); err != nil {
			return n, fmt.Errorf("scanner: write scan %d: %w", n+1, err)
		}
		last = time.Now()
		n++
		log.Info("scan", "n", n, "token", population.MaskLen(tok))
	}
	return n, nil
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
