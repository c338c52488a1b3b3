package inputs

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/sentinel-edge/sentinel/drivers"
)

// ErrNoPin is returned by Lookup for a line this machine does not have.
var ErrNoPin = drivers.ErrNoPin

// Timing; tests shrink them.
var (
	// pollEvery bounds how long the loop waits for an edge before it looks at ctx and
	// re-reads the line (an edge the hardware missed is still seen).
	pollEvery = 100 * time.Millisecond
	// burstEdges edges within one settle make a chatter burst, logged once.
	burstEdges = 20
)

// Change is a debounced change of an input.
type Change struct {
	Input   string // the input's name: exit_button, door_sensor, fire_alarm, tamper
	Active  bool
	At      time.Time
	Initial bool // the state read at start, before any change
}

// Options configure an input.
type Options struct {
	ActiveLow bool          // the input is active when the line is low
	Debounce  time.Duration // how long the line must stay quiet before a change counts
}

// Input is one debounced GPIO input.
type Input struct {
	name string
	pin  gpio.PinIn
	opt  Options
	log  *slog.Logger

	active         atomic.Bool
	changes, edges atomic.Int64
	bursts         atomic.Int64
}

// New sets pin up as an input with edge detection on both edges. name says what it is.
func New(name string, pin gpio.PinIn, opt Options, log *slog.Logger) (*Input, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := pin.In(gpio.PullNoChange, gpio.BothEdges); err != nil {
		return nil, fmt.Errorf("inputs: %s on %s: edge detection: %w", name, pin, err)
	}
	in := &Input{name: name, pin: pin, opt: opt, log: log.With("driver", "inputs", "input", name, "pin", pin.String())}
	in.active.Store(in.read())
	return in, nil
}

// Lookup finds the GPIO line called name (e.g. GPIO17); see drivers.LookupPin.
func Lookup(name string) (gpio.PinIO, error) { return drivers.LookupPin(name) }

func (in *Input) String() string { return in.name + " on " + in.pin.String() }

// Name is what the input is (exit_button, door_sensor, ...).
func (in *Input) Name() string { return in.name }

func (in *Input) read() bool { return (in.pin.Read() == gpio.High) != in.opt.ActiveLow }

// Active is the last debounced state.
func (in *Input) Active() bool { return in.active.Load() }

// Stats counts what the input saw.
type Stats struct {
	Changes, Edges, Bursts int64
}

// Stats returns the counters.
func (in *Input) Stats() Stats {
	return Stats{in.changes.Load(), in.edges.Load(), in.bursts.Load()}
}

// Run reports the state at start (Initial) and then every debounced change, until ctx ends.
// emit runs on Run's goroutine: it must be quick.
func (in *Input) Run(ctx context.Context, emit func(Change)) error {
	stable := in.read()
	in.active.Store(stable)
	emit(Change{Input: in.name, Active: stable, At: time.Now(), Initial: true})
	for ctx.Err() == nil {
		edge := in.pin.WaitForEdge(pollEvery)
		if edge {
			in.edges.Add(1)
			in.settle(ctx)
		} else if in.read() == stable {
			continue
		} else if in.opt.Debounce > 0 {
			in.settle(ctx) // a change without an edge: still needs to hold
		}
		if cur := in.read(); cur != stable && ctx.Err() == nil {
			stable = cur
			in.active.Store(cur)
			in.changes.Add(1)
			emit(Change{Input: in.name, Active: cur, At: time.Now()})
		}
	}
	return nil
}

// settle waits until no edge came for the debounce time.
func (in *Input) settle(ctx context.Context) {
	if in.opt.Debounce <= 0 {
		return
	}
	n := 0
	for ctx.Err() == nil && in.pin.WaitForEdge(in.opt.Debounce) {
		in.edges.Add(1)
		if n++; n == burstEdges {
			in.bursts.Add(1)
			in.log.Warn("input line chatters; waiting for it to settle", "edges_total", in.edges.Load())
		}
	}
}

// Halt stops edge detection.
func (in *Input) Halt() error {
	if err := in.pin.In(gpio.PullNoChange, gpio.NoEdge); err != nil {
		return fmt.Errorf("inputs: %s: %w", in, err)
	}
	return nil
}
