package relay

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// Errors.
var (
	ErrNoPin    = errors.New("relay: no such GPIO line")
	ErrMaxPulse = errors.New("relay: pulse longer than the maximum")
	ErrHalted   = errors.New("relay: halted")
)

// GPIO is a barrier relay on one GPIO line.
type GPIO struct {
	pin       gpio.PinOut
	activeLow bool
	maxPulse  time.Duration

	mu     sync.Mutex
	timer  *time.Timer
	halted bool
	// Pulses counts the pulses begun.
	pulses int64
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

// Lookup initialises periph's host drivers and finds the GPIO line called name (e.g. GPIO17).
func Lookup(name string) (gpio.PinIO, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("relay: init GPIO host drivers: %w", err)
	}
	p := gpioreg.ByName(name)
	if p == nil {
		var names []string
		for _, q := range gpioreg.All() {
			names = append(names, q.Name())
		}
		sort.Strings(names)
		avail := "none: this machine has no GPIO lines"
		if len(names) > 0 {
			avail = strings.Join(names, ", ")
		}
		return nil, fmt.Errorf("%w %q (available: %s)", ErrNoPin, name, avail)
	}
	return p, nil
}

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
	r.timer = time.AfterFunc(d, r.release)
	return nil
}

func (r *GPIO) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.set(false)
}

// Halt de-energises the relay and refuses further pulses.
func (r *GPIO) Halt() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.halted = true
	if r.timer != nil {
		r.timer.Stop()
	}
	if err := r.set(false); err != nil {
		return fmt.Errorf("relay: de-energise %s: %w", r.pin, err)
	}
	return nil
}
