//go:build !linux

package scanner

import (
	"fmt"
	"log/slog"
)

// Port is where scans are written. Only Linux is supported.
type Port struct{}

// Open returns ErrUnsupported outside Linux.
func Open(path string, _ *slog.Logger) (*Port, error) {
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, path)
}

// String names nothing.
func (p *Port) String() string { return "" }

// Path is empty.
func (p *Port) Path() string { return "" }

// Device is empty.
func (p *Port) Device() string { return "" }

// Write fails.
func (p *Port) Write([]byte) (int, error) { return 0, ErrUnsupported }

// Close does nothing.
func (p *Port) Close() error { return nil }

func (p *Port) queued() (int, error) { return 0, ErrUnsupported }
