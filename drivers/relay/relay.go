package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/sentinel-edge/sentinel/drivers"
)

// Errors.
var (
	ErrNoPin    = drivers.ErrNoPin
	ErrMaxPulse = errors.New("relay: pulse longer than the maximum")
	ErrHalted   = errors.New("relay: halted")
)

// GPIO is a barrier relay on one GPIO line.
type GPIO struct {
	pin       gpio.PinOut
	activeLow bool
	maxPulse  time.Duration

	mu     sync.Mutex
	timer  *time.Timer // set while a pulse runs
	gen    uint64      // which pulse timer is current
	held   int         // Holds in force (the fire alarm and the always-open mode may overlap)
	halted bool
	// Pulses counts the pulses begun.
	pulses int64
	faults int64 // failed de-energise attempts at the end of a pulse
}

// Options configure a relay.
type Options struct {
	ActiveLow bool          // the relay energises when the line is low
	MaxPulse  time.Duration // the longest pulse accepted; 0 means 10s
}

// New takes pin for the relay and de-energises it at once, before anything else can happen.
func New(pin gpio.PinOut, opt Options) (*GPIO, error) {
	if opt.MaxPulse == 0 {
		opt.MaxPulse = 10 * time.Second
	}
	r := &GPIO{pin: pin, activeLow: opt.ActiveLow, maxPulse: opt.MaxPulse}
	if err := r.set(false); err != nil {
		return nil, fmt.Errorf("relay: de-energise %s at start: %w", pin, err)
	}
	return r, nil
}

// Lookup finds the GPIO line called name (e.g. GPIO17); see drivers.LookupPin.
func Lookup(name string) (gpio.PinIO, error) { return drivers.LookupPin(name) }

func (r *GPIO) String() string { return "relay on " + r.pin.String() }

func (r *GPIO) set(energised bool) error {
	l := gpio.Level(energised != r.activeLow)
	return r.pin.Out(l)
}

// Pulse energises the relay for d, then de-energises it. It returns once the relay is
// energised; a pulse during a pulse extends it to end d from now. A pulse longer than the
// maximum is refused and leaves the relay de-energised.
func (r *GPIO) Pulse(_ context.Context, d time.Duration) error {
	if d <= 0 || d > r.maxPulse {
		return fmt.Errorf("%w: %s (max %s)", ErrMaxPulse, d, r.maxPulse)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.halted {
		return ErrHalted
	}
	if err := r.set(true); err != nil {
		_ = r.set(false)
		return fmt.Errorf("relay: energise %s: %w", r.pin, err)
	}
	r.pulses++
	if r.timer != nil {
		r.timer.Stop()
	}
	r.gen++
	gen := r.gen
	r.timer = time.AfterFunc(d, func() { r.pulseEnded(gen) })
	return nil
}

// pulseEnded de-energises the relay when pulse gen is still the current one and no Hold is
// in force.
func (r *GPIO) pulseEnded(gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen != gen || r.timer == nil {
		return // extended by a later pulse, or ended early
	}
	r.timer = nil
	if r.held == 0 {
		if err := r.set(false); err != nil {
			// The line did not take the safe level: count it and try again until it does or
			// a later pulse, hold or halt takes over. The relay must not stay energised.
			r.faults++
			r.gen++
			gen := r.gen
			r.timer = time.AfterFunc(releaseRetry, func() { r.pulseEnded(gen) })
		}
	}
}

// releaseRetry is how soon a failed de-energise is tried again; tests may shrink it.
var releaseRetry = 50 * time.Millisecond

// Faults counts the times the relay line refused the de-energised level at the end of a
// pulse (each was retried).
func (r *GPIO) Faults() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.faults
}

// EndPulse ends a running pulse early (hold mode: the door sensor saw the person through).
// A Hold stays in force.
func (r *GPIO) EndPulse() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	if r.held > 0 && !r.halted {
		return nil
	}
	if err := r.set(false); err != nil {
		return fmt.Errorf("relay: de-energise %s: %w", r.pin, err)
	}
	return nil
}

// Hold energises the relay until Release, with no time bound: the fire alarm and the
// always-open mode. Holds are counted: each Hold needs its own Release, so the fire alarm
// clearing does not drop an always-open mode, nor the reverse. Pulses during a Hold change
// nothing. A Hold after Halt is refused.
func (r *GPIO) Hold() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.halted {
		return ErrHalted
	}
	if err := r.set(true); err != nil {
		if r.held == 0 && r.timer == nil {
			_ = r.set(false)
		}
		return fmt.Errorf("relay: energise %s: %w", r.pin, err)
	}
	r.held++
	return nil
}

// Release ends one Hold. When none is left the relay de-energises, unless a pulse is still
// running, which then ends on its own.
func (r *GPIO) Release() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held > 0 {
		r.held--
	}
	if r.held > 0 || (r.timer != nil && !r.halted) {
		return nil
	}
	if err := r.set(false); err != nil {
		return fmt.Errorf("relay: de-energise %s: %w", r.pin, err)
	}
	return nil
}

// Held says whether a Hold is in force.
func (r *GPIO) Held() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held > 0
}

// Halt de-energises the relay, ends any pulse or Hold, and refuses further pulses.
func (r *GPIO) Halt() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.halted = true
	r.held = 0
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	if err := r.set(false); err != nil {
		return fmt.Errorf("relay: de-energise %s: %w", r.pin, err)
	}
	return nil
}
