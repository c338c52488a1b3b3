package cameratest

import (
	"context"
	"sync/atomic"
)

// JPEG is a minimal JPEG-shaped frame (SOI ... EOI).
var JPEG = []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0xFF, 0xD9}

// Camera returns Frame (JPEG when nil), or Err.
type Camera struct {
	Frame []byte
	Err   error
	n     atomic.Int64
}

func (c *Camera) String() string { return "fake camera" }

// Snapshot returns the frame.
func (c *Camera) Snapshot(ctx context.Context) ([]byte, error) {
	c.n.Add(1)
	if c.Err != nil {
		return nil, c.Err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.Frame == nil {
		return append([]byte(nil), JPEG...), nil
	}
	return append([]byte(nil), c.Frame...), nil
}

// Snapshots counts the calls.
func (c *Camera) Snapshots() int64 { return c.n.Load() }

// Halt does nothing.
func (c *Camera) Halt() error { return nil }
