//go:build !linux

package scanner

import (
	"fmt"
	"log/slog"
)

// Duplex is a two-way pty. Only Linux is supported.
type Duplex struct{}

// OpenDuplex returns ErrUnsupported outside Linux.
func OpenDuplex(path string, _ *slog.Logger) (*Duplex, error) {
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, path)
}

// String names nothing.
func (d *Duplex) String() string { return "" }

// Path is empty.
func (d *Duplex) Path() string { return "" }

// Read fails.
func (d *Duplex) Read([]byte) (int, error) { return 0, ErrUnsupported }

// Write fails.
func (d *Duplex) Write([]byte) (int, error) { return 0, ErrUnsupported }

// Close does nothing.
func (d *Duplex) Close() error { return nil }
