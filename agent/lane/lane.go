package lane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sentinel-edge/sentinel/agent/clock"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/drivers/inputs"
)

// Errors.
var (
	ErrNoBarrier = errors.New("lane: this unit has no barrier")
	// ErrModeNotPersisted says a gate-mode change took effect but could not be written to its
	// state file: a restart would come back in the mode written before.
	ErrModeNotPersisted = errors.New("lane: gate mode not persisted")
)

// Relay is the barrier relay; relay.GPIO is one. Pulse energises it for a while (a pass),
// Hold until Release (the fire alarm, always_open; holds are counted), EndPulse ends a pulse
// early (hold mode: the door closed behind the person), Halt de-energises it for good.
type Relay interface {
	Pulse(ctx context.Context, d time.Duration) error
	EndPulse() error
	Hold() error
	Release() error
	Held() bool
	Halt() error
	String() string
}

// Input is one debounced lane input; inputs.Input is one.
type Input interface {
	Run(ctx context.Context, emit func(inputs.Change)) error
	Halt() error
	Name() string
}

// Emitter records an event without blocking; events.Recorder is one.
type Emitter interface{ Emit(record.Event) }

// Names of the inputs a lane understands (config inputs.<name>).
const (
	InputExitButton = "exit_button"
	InputDoorSensor = "door_sensor"
	InputFireAlarm  = "fire_alarm"
	InputTamper     = "tamper"
)

// Options configure a Lane.
type Options struct {
	// Relay drives the barrier; nil for a unit without one (reduced gate, handheld).
	Relay Relay
	// Pulse is how long an opening energises the relay (barrier.pulse).
	Pulse time.Duration
	// MaxPulse bounds every opening (barrier.max_pulse). With HoldUntilClosed an opening
	// energises the relay for MaxPulse and the door sensor ends it once the door closed
	// behind the person (barrier.mode hold).
	MaxPulse        time.Duration
	HoldUntilClosed bool
	// DoorHeldOpen is how long the door may stay open before door_held_open
	// (inputs.door_sensor.held_open).
	DoorHeldOpen time.Duration
	// ModeFile is the gate mode's state file (gate-mode.json beside the queue); "" keeps the
	// mode in memory only.
	ModeFile string
	// Events records what the lane did; required.
	Events Emitter
	// OnChange, when set, is called after the gate mode, the fire alarm or tamper changed.
	OnChange func()
	// ForcedGrace is how long after a door opens the lane waits for the opening to be
	// explained before door_forced_open; 0 means 300ms.
	ForcedGrace time.Duration
	// AuthorisedSlack is added to a pulse: the door may open a little after it ended; 0 means
	// 2s.
	AuthorisedSlack time.Duration
	// Clock says whether the wall clock is trusted (the mode file's set_at); nil means
	// clock.State.
	Clock func() string
	Log   *slog.Logger
}

// State is what the lane tells the status and the screen.
type State struct {
	GateMode  string // normal, always_open, locked
	FireAlarm string // record.FireAlarmUnknown, Normal or Active
	Tamper    bool
}

// Lane is one lane's barrier, inputs and gate mode. It is safe for concurrent use.
type Lane struct {
	opt  Options
	mode gateMode

	mu         sync.Mutex
	authorised time.Time // the last time the barrier was opened on purpose
	fire       string
	tamper     bool
	doorOpen   bool
	doorAlarm  bool // a forced- or held-open alarm was raised for this opening
	doorTimer  *time.Timer
	doorSeq    int // which opening the timers belong to
}

// New returns a lane in gate mode normal, the fire alarm not reported yet.
func New(opt Options) *Lane {
	if opt.ForcedGrace <= 0 {
		opt.ForcedGrace = 300 * time.Millisecond
	}
	if opt.AuthorisedSlack <= 0 {
		opt.AuthorisedSlack = 2 * time.Second
	}
	if opt.MaxPulse <= 0 {
		opt.MaxPulse = 10 * time.Second
	}
	if opt.Clock == nil {
		opt.Clock = clock.State
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	l := &Lane{opt: opt, fire: record.FireAlarmUnknown}
	l.mode = gateMode{relay: opt.Relay, path: opt.ModeFile, clock: opt.Clock}
	return l
}

// HasBarrier says whether the lane drives a barrier.
func (l *Lane) HasBarrier() bool { return l.opt.Relay != nil }

// Barrier names the barrier's relay ("" without one).
func (l *Lane) Barrier() string {
	if l.opt.Relay == nil {
		return ""
	}
	return l.opt.Relay.String()
}

// State returns what the status shows of the lane.
func (l *Lane) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return State{GateMode: l.mode.get(), FireAlarm: l.fire, Tamper: l.tamper}
}

func (l *Lane) changed() {
	if l.opt.OnChange != nil {
		l.opt.OnChange()
	}
}

// Plan says what the barrier does for a verdict in the gate mode in force: the gate outcome
// for the record (opened, not_opened, held_open, no_barrier) and the gate mode when it is not
// normal. Open must follow a plan of opened.
func (l *Lane) Plan(pass bool) (gate, gateMode string) {
	gate = record.GateNoBarrier
	if l.opt.Relay != nil {
		gate = record.GateNotOpened
		if pass {
			gate = record.GateOpened
		}
	}
	switch m := l.mode.get(); m {
	case record.GateModeLocked:
		if gate == record.GateOpened {
			gate = record.GateNotOpened
		}
		return gate, m
	case record.GateModeAlwaysOpen:
		if gate != record.GateNoBarrier {
			gate = record.GateHeldOpen
		}
		return gate, m
	default:
		return gate, ""
	}
}

// Open opens the barrier once, on purpose: a pass, the exit button, a remote open. It marks
// the opening as authorised for the door sensor, then energises the relay for the lane's
// pulse (for MaxPulse in hold mode, until the door closed). It returns how long the relay
// was asked to stay energised.
func (l *Lane) Open(ctx context.Context) (time.Duration, error) {
	if l.opt.Relay == nil {
		return 0, ErrNoBarrier
	}
	d := l.opt.Pulse
	if l.opt.HoldUntilClosed || d > l.opt.MaxPulse {
		d = l.opt.MaxPulse
	}
	l.mu.Lock()
	l.authorised = time.Now()
	l.mu.Unlock()
	if err := l.opt.Relay.Pulse(ctx, d); err != nil {
		return d, fmt.Errorf("lane: open %s: %w", l.opt.Relay, err)
	}
	return d, nil
}

// Run runs the inputs until ctx ends and handles what they report, then stops the door
// timers and halts the inputs.
func (l *Lane) Run(ctx context.Context, ins []Input) error {
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Go(func() {
			if err := in.Run(ctx, l.Input); err != nil && ctx.Err() == nil {
				l.opt.Log.Error("lane input stopped", "input", in.Name(), "err", err)
			}
		})
	}
	<-ctx.Done()
	wg.Wait()
	l.stopTimers()
	for _, in := range ins {
		if err := in.Halt(); err != nil {
			l.opt.Log.Warn("halting a lane input", "input", in.Name(), "err", err)
		}
	}
	return nil
}

// Input handles a debounced change of an input. It runs on the input's goroutine: the relay
// acts at once, and the event is recorded after, without waiting for the database.
func (l *Lane) Input(c inputs.Change) {
	switch c.Input {
	case InputFireAlarm:
		l.fireAlarm(c)
	case InputExitButton:
		if c.Active && !c.Initial {
			l.exitButton()
		}
	case InputDoorSensor:
		l.door(c)
	case InputTamper:
		l.tamperChange(c)
	}
}

func (l *Lane) tamperChange(c inputs.Change) {
	if c.Initial && !c.Active {
		l.mu.Lock()
		l.tamper = false
		l.mu.Unlock()
		return
	}
	l.mu.Lock()
	l.tamper = c.Active
	l.mu.Unlock()
	t := record.EventTamper
	if !c.Active {
		t = record.EventTamperCleared
	}
	l.opt.Log.Warn("tamper input changed", "active", c.Active)
	l.changed()
	l.opt.Events.Emit(record.Event{Type: t, Source: InputTamper})
}

func (l *Lane) fireAlarm(c inputs.Change) {
	s := record.FireAlarmNormal
	if c.Active {
		s = record.FireAlarmActive
	}
	l.mu.Lock()
	was := l.fire
	l.fire = s
	l.mu.Unlock()
	if was == s || (c.Initial && !c.Active) {
		if was != s {
			l.changed() // unknown → normal at start: nothing to record
		}
		return
	}
	gate := l.fireRelay(c.Active)
	l.changed() // status, screen and metrics, after the relay acted
	t := record.EventFireAlarm
	if !c.Active {
		t = record.EventFireAlarmCleared
	}
	l.opt.Log.Warn("fire alarm", "active", c.Active, "gate", gate)
	l.opt.Events.Emit(record.Event{Type: t, Source: InputFireAlarm, Gate: gate})
}

// fireRelay holds the barrier open for an active alarm and releases the hold when it
// clears; it returns what the barrier did.
func (l *Lane) fireRelay(active bool) string {
	if l.opt.Relay == nil {
		return record.GateNoBarrier
	}
	var err error
	gate := record.GateReleased
	if active {
		err, gate = l.opt.Relay.Hold(), record.GateHeldOpen
	} else {
		err = l.opt.Relay.Release()
	}
	if err != nil {
		l.opt.Log.Error("fire alarm: barrier relay failed", "relay", l.opt.Relay.String(), "active", active, "err", err)
		return record.GateNotOpened
	}
	return gate
}

func (l *Lane) exitButton() {
	gate := record.GateNoBarrier
	if l.opt.Relay != nil {
		gate = record.GateOpened
		if _, err := l.Open(context.Background()); err != nil {
			gate = record.GateNotOpened
			l.opt.Log.Error("exit button: barrier did not open", "err", err)
		}
	}
	l.opt.Events.Emit(record.Event{Type: record.EventExitButton, Source: InputExitButton, Gate: gate})
}
