package idcardtest

import (
	"context"

	"github.com/sentinel-edge/sentinel/drivers/idcard"
)

// Reader emits every card sent on C.
type Reader struct {
	C chan idcard.Card
}

// New returns a fake reader with a buffered channel.
func New() *Reader { return &Reader{C: make(chan idcard.Card, 16)} }

func (r *Reader) String() string { return "fake id-card reader" }

// Run emits cards until ctx ends.
func (r *Reader) Run(ctx context.Context, emit func(idcard.Card)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-r.C:
			emit(c)
		}
	}
}

// Halt does nothing.
func (r *Reader) Halt() error { return nil }
