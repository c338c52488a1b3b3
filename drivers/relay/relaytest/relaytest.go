package relaytest

import (
	"context"
	"sync"
	"time"
)

// Relay records every pulse on C, every Hold and Release on Holds, and counts halts.
type Relay struct {
	C chan time.Duration
	// Holds gets true on each Hold and false on each Release.
	Holds chan bool

	mu      sync.Mutex
	halts   int
	held    int
	ends    int
	Err     error // returned by Pulse when set
	Pulses  int
	HoldErr error // returned by Hold when set
}

// New returns a fake relay.
func New() *Relay { return &Relay{C: make(chan time.Duration, 64), Holds: make(chan bool, 64)} }

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

// EndPulse counts an early end of a pulse.
func (r *Relay) EndPulse() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ends++
	return nil
}

// Ends says how often EndPulse was called.
func (r *Relay) Ends() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ends
}

// Hold records a hold; holds are counted like relay.GPIO's.
func (r *Relay) Hold() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.HoldErr != nil {
		return r.HoldErr
	}
	r.held++
	select {
	case r.Holds <- true:
	default:
	}
	return nil
}

// Release records a release.
func (r *Relay) Release() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held > 0 {
		r.held--
	}
	select {
	case r.Holds <- false:
	default:
	}
	return nil
}

// Held says whether a Hold is in force.
func (r *Relay) Held() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held > 0
}

// Halt counts the halt and ends a Hold.
func (r *Relay) Halt() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.halts++
	r.held = 0
	return nil
}

// Halts says how often Halt was called.
func (r *Relay) Halts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.halts
}
