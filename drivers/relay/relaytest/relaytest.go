// Package relaytest is a fake barrier relay that records its pulses.
package relaytest

import (
	"context"
	"sync"
	"time"
)

// Relay records every pulse on C and counts halts.
type Relay struct {
	C chan time.Duration

	mu     sync.Mutex
	halts  int
	Err    error // returned by Pulse when set
	Pulses int
}

// New returns a fake relay.
func New() *Relay { return &Relay{C: make(chan time.Duration, 64)} }

func (r *Relay) String() string { return "fake relay" }

// Pulse records d.
func (r *Relay) Pulse(_ context.Context, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Err != nil {
		return r.Err
	}
	r.Pulses++
	select {
	case r.C <- d:
	default:
	}
	return nil
}

// Halt counts the halt.
func (r *Relay) Halt() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.halts++
	return nil
}

// Halts says how often Halt was called.
func (r *Relay) Halts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.halts
}
