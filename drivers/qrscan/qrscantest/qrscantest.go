package qrscantest

import (
	"context"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/qrscan"
)

// Scanner emits every token sent on C.
type Scanner struct {
	C chan string
}

// New returns a fake scanner with a buffered channel.
func New() *Scanner { return &Scanner{C: make(chan string, 64)} }

func (s *Scanner) String() string { return "fake qr scanner" }

// Run emits scans until ctx ends.
func (s *Scanner) Run(ctx context.Context, emit func(qrscan.Scan)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case tok := <-s.C:
			emit(qrscan.Scan{Token: tok, At: time.Now()})
		}
	}
}

// Halt does nothing.
func (s *Scanner) Halt() error { return nil }
