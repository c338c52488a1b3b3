package scanner

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestParseEOL(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []byte
		wantErr error
	}{
		{name: "crlf", in: "crlf", want: []byte("\r\n")},
		{name: "cr", in: "cr", want: []byte("\r")},
		{name: "lf upper", in: "LF", want: []byte("\n")},
		{name: "unknown", in: "nl", wantErr: ErrBadEOL},
		{name: "empty", in: "", wantErr: ErrBadEOL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEOL(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("ParseEOL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestReadTokens(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "plain", in: "A1\nB2\n", want: []string{"A1", "B2"}},
		{name: "crlf and blanks", in: "A1\r\n\r\n  \nB2", want: []string{"A1", "B2"}},
		{name: "inner spaces kept", in: "A 1\n", want: []string{"A 1"}},
		{name: "empty", in: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadTokens(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Errorf("got %d tokens %q, want %q", len(got), got, tt.want)
			}
			// The streaming source agrees with the list reader.
			src := NewLineSource(strings.NewReader(tt.in))
			var streamed []string
			for {
				tok, err := src.Next(context.Background())
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				streamed = append(streamed, tok)
			}
			if strings.Join(streamed, "|") != strings.Join(tt.want, "|") {
				t.Errorf("LineSource gave %q, want %q", streamed, tt.want)
			}
		})
	}
}

func TestFeed(t *testing.T) {
	tests := []struct {
		name   string
		tokens []string
		count  int // for the source
		opts   Options
		want   string
		wantN  int
	}{
		{name: "default eol", tokens: []string{"T1", "T2"}, want: "T1\rT2\r", wantN: 2},
		{name: "crlf", tokens: []string{"T1", "T2"}, opts: Options{EOL: EOLCRLF}, want: "T1\r\nT2\r\n", wantN: 2},
		{name: "lf no limit", tokens: []string{"T1"}, opts: Options{EOL: EOLLF, Rate: 0}, want: "T1\n", wantN: 1},
		{name: "count stops", tokens: []string{"T1", "T2", "T3"}, opts: Options{Count: 2}, want: "T1\rT2\r", wantN: 2},
		{name: "list cycles", tokens: []string{"T1", "T2"}, count: 5, want: "T1\rT2\rT1\rT2\rT1\r", wantN: 5},
		{name: "empty list", tokens: nil, count: 3, want: "", wantN: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			n, err := Feed(context.Background(), &buf, NewListSource(tt.tokens, tt.count), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.wantN || buf.String() != tt.want {
				t.Errorf("wrote %d scans %q, want %d %q", n, buf.String(), tt.wantN, tt.want)
			}
		})
	}
}

func TestFeedRate(t *testing.T) {
	const rate, scans = 50.0, 4
	start := time.Now()
	n, err := Feed(context.Background(), io.Discard, NewListSource([]string{"T"}, scans), Options{Rate: rate})
	if err != nil || n != scans {
		t.Fatalf("Feed = %d, %v", n, err)
	}
	if min := time.Duration(float64(scans-1) / rate * float64(time.Second)); time.Since(start) < min {
		t.Errorf("%d scans took %v, want at least %v at %v/s", scans, time.Since(start), min, rate)
	}
}

func TestFeedCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	defer pw.Close()
	done := make(chan error, 1)
	go func() {
		_, err := Feed(ctx, io.Discard, NewLineSource(pr), Options{})
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Feed did not stop on cancel")
	}
}

func TestFeedLogsMasked(t *testing.T) {
	var logBuf bytes.Buffer
	_, err := Feed(context.Background(), io.Discard, NewListSource([]string{"HC-SECRET-TOKEN"}, 0),
		Options{Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logBuf.String(), "SECRET") || !strings.Contains(logBuf.String(), "HC***") {
		t.Errorf("log line is not masked as expected (%d bytes)", logBuf.Len())
	}
}
