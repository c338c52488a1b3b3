package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/drivers/camera"
	"github.com/sentinel-edge/sentinel/drivers/idcard"
	"github.com/sentinel-edge/sentinel/drivers/inputs"
	"github.com/sentinel-edge/sentinel/drivers/qrscan"
	"github.com/sentinel-edge/sentinel/verify"
)

// The devices part builds the readers and inputs the core does not: the ID-card reader, an
// evdev QR scanner, the camera (and face verification, face.go) and the lane's GPIO inputs
// (exit button, door sensor, fire alarm, tamper), and records what they do as device events.
func init() {
	RegisterPart(Part{Name: "devices", Order: 10, Setup: setupDevices})
}

// IDCardReader is what the agent needs of an ID-card reader; idcard.SAM is one.
type IDCardReader interface {
	Run(ctx context.Context, emit func(idcard.Card)) error
	String() string
}

// IDCardSource adapts an ID-card reader to a Source: each card read is a credential of kind
// idcard, with the card's ID number and name (the record masks them).
type IDCardSource struct{ Reader IDCardReader }

func (s IDCardSource) String() string { return s.Reader.String() }

// Run emits each card as an idcard credential. The photo stays in the driver.
func (s IDCardSource) Run(ctx context.Context, emit func(verify.Credential, time.Time)) error {
	return s.Reader.Run(ctx, func(c idcard.Card) {
		emit(verify.Credential{Kind: verify.KindIDCard, IDNumber: c.IDNumber, Name: c.Name}, time.Now())
	})
}

// barrierHolder is a relay that can stay energised without a time bound, and end a pulse
// early (relay.GPIO is one).
type barrierHolder interface {
	Hold() error
	Release() error
	Held() bool
}

type pulseEnder interface{ EndPulse() error }

// OS seams; tests swap them.
var (
	// lookupInputPin finds a GPIO line for an input.
	lookupInputPin = func(name string) (gpio.PinIO, error) { return inputs.Lookup(name) }
	newSAM         = func(c idcard.Config, log *slog.Logger) interface {
		IDCardReader
		Open() error
	} {
		return idcard.NewSAM(c, log)
	}
)

// Timing of the lane; tests shrink them.
var (
	// forcedGrace is how long after a door opens the lane waits for the opening to be
	// explained (a pass or the exit button can be recorded a moment after the relay moved).
	forcedGrace = 300 * time.Millisecond
	// authorisedSlack is added to the pulse: the door may open a little after it ends.
	authorisedSlack = 2 * time.Second
)

// lane handles the inputs of one lane.
type lane struct {
	cfg    *config.Config
	relay  Relay // nil without a barrier
	ev     *eventRecorder
	log    *slog.Logger
	pulse  time.Duration
	hold   bool // barrier.mode hold: a pass holds the relay until the door closed again
	inputs []*inputs.Input
	onFire func(active bool) // tells status, screen and metrics; nil in tests

	mu         sync.Mutex
	authorised time.Time // the last time the barrier was opened on purpose
	fire       bool
	doorOpen   bool
	doorAlarm  bool // a forced- or held-open alarm was raised for this opening
	doorTimer  *time.Timer
	doorSeq    int // which opening the timers belong to
}

func setupDevices(ctx context.Context, d *Daemon) (func(context.Context) error, error) {
	cfg, log := d.Cfg, d.Log.With("part", "devices")
	// Events go through the daemon's one recorder, which never blocks the relay.
	ev, evDone := d.eventEmitter()
	var halts []func() error
	fail := func(err error) (func(context.Context) error, error) {
		for _, h := range halts {
			_ = h()
		}
		evDone()
		return nil, err
	}
	readerState := func(source string) func(bool, error) {
		return func(online bool, err error) {
			d.SetReaderState(source, online)
			e := Event{Type: EventReaderOnline, Source: source}
			if !online {
				e.Type = EventReaderOffline
				if err != nil {
					e.Detail = err.Error()
				}
			}
			ev.Emit(e)
		}
	}

	// Readers.
	for _, s := range d.Sources {
		if q, ok := s.(QRSource); ok {
			if ser, ok := q.Scanner.(*qrscan.Serial); ok {
				ser.OnState(readerState("qr"))
			}
		}
	}
	if q := cfg.Scanners.QR; q != nil && q.Driver == "evdev" {
		e := qrscan.NewEvdev(qrscan.EvdevConfig{Device: q.Device, MaxLength: q.MaxLength, DuplicateWindow: q.DuplicateWindow}, d.Log)
		if err := e.Open(); err != nil {
			return fail(fmt.Errorf("scanners.qr.device: %w", err))
		}
		e.OnState(readerState("qr"))
		d.Sources = append(d.Sources, QRSource{e})
	}
	if r := cfg.Scanners.IDCard; r != nil {
		sam := newSAM(idcard.Config{Port: r.Port, Baud: r.Baud, OnState: readerState("idcard")}, d.Log)
		if err := sam.Open(); err != nil {
			return fail(fmt.Errorf("scanners.idcard.port: %w", err))
		}
		d.Sources = append(d.Sources, IDCardSource{sam})
	}

	// The camera: built and checked here; face.go puts it in front of the verifier when
	// camera.verify asks for it. A snapshot is stored only with camera.keep sealed.
	var cam camera.Camera
	if c := cfg.Camera; c != nil {
		switch c.Driver {
		case "http":
			h, err := camera.NewHTTP(c.URL, c.Timeout)
			if err != nil {
				return fail(fmt.Errorf("camera.url: %w", err))
			}
			cam = h
		case "v4l2":
			v, err := camera.NewV4L2(c.Device)
			if err != nil {
				return fail(fmt.Errorf("camera.device: %w", err))
			}
			cam = v
			halts = append(halts, v.Halt)
		}
		if err := setupFace(d, cam, readerState("camera"), log); err != nil {
			return fail(err)
		}
	}

	// The lane: inputs and what they do to the barrier.
	l := &lane{cfg: cfg, relay: d.Relay, ev: ev, log: log, pulse: cfg.Barrier.Pulse, hold: cfg.Barrier.Mode == "hold", onFire: d.SetFireAlarm}
	if l.hold && d.Pipeline != nil {
		// Hold mode: a pass energises the relay until the door sensor saw the person
		// through, at most max_pulse.
		d.Pipeline.Pulse = cfg.Barrier.MaxPulse
		l.pulse = cfg.Barrier.MaxPulse
	}
	for name, in := range cfg.Inputs.Named() {
		pin, err := inputPin(cfg, in.Pin)
		if err != nil {
			return fail(fmt.Errorf("inputs.%s.pin: %w", name, err))
		}
		i, err := inputs.New(name, pin, inputs.Options{ActiveLow: in.ActiveLow, Debounce: in.Debounce}, d.Log)
		if err != nil {
			return fail(fmt.Errorf("inputs.%s.pin: %w", name, err))
		}
		l.inputs = append(l.inputs, i)
		halts = append(halts, i.Halt)
	}
	d.Observe(func(p Passage) {
		if p.Record.Gate == GateOpened {
			l.authorise()
		}
	})

	return func(ctx context.Context) error {
		var wg sync.WaitGroup
		defer evDone() // the recorder stores what is queued once every emitter is done
		for _, in := range l.inputs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = in.Run(ctx, l.change)
			}()
		}
		<-ctx.Done()
		wg.Wait()
		l.stopTimers()
		for _, h := range halts {
			if err := h(); err != nil {
				log.Warn("halting a device", "err", err)
			}
		}
		return nil
	}, nil
}

// inputPin finds the line of an input: a GPIO line, or an inert in-memory line when the
// barrier itself is simulated (barrier.driver fake).
func inputPin(cfg *config.Config, name string) (gpio.PinIO, error) {
	if cfg.Barrier.Driver == "fake" {
		return &gpiotest.Pin{N: "FAKE-" + name, EdgesChan: make(chan gpio.Level, 16)}, nil
	}
	return lookupInputPin(name)
}

func (l *lane) authorise() {
	l.mu.Lock()
	l.authorised = time.Now()
	l.mu.Unlock()
}

// change handles a debounced input change. It runs on the input's goroutine: the relay acts
// at once, and the event is recorded after, without waiting for the database.
func (l *lane) change(c inputs.Change) {
	switch c.Input {
	case "fire_alarm":
		l.fireAlarm(c)
	case "exit_button":
		if c.Active && !c.Initial {
			l.exitButton()
		}
	case "door_sensor":
		l.door(c)
	case "tamper":
		if c.Initial && !c.Active {
			return
		}
		t := EventTamper
		if !c.Active {
			t = EventTamperCleared
		}
		l.log.Warn("tamper input changed", "active", c.Active)
		l.ev.Emit(Event{Type: t, Source: "tamper"})
	}
}

func (l *lane) fireAlarm(c inputs.Change) {
	if c.Initial && !c.Active {
		return
	}
	l.mu.Lock()
	was := l.fire
	l.fire = c.Active
	l.mu.Unlock()
	if was == c.Active {
		return
	}
	gate := GateNoBarrier
	if l.relay != nil {
		h, ok := l.relay.(barrierHolder)
		var err error
		switch {
		case !ok:
			err = errors.New("the relay cannot be held open")
		case c.Active:
			err = h.Hold()
			gate = "held_open"
		default:
			err = h.Release()
			gate = "released"
		}
		if err != nil {
			gate = GateNotOpened
			l.log.Error("fire alarm: barrier relay failed", "relay", l.relay.String(), "active", c.Active, "err", err)
		}
	}
	if l.onFire != nil {
		l.onFire(c.Active) // status, screen and metrics, after the relay acted
	}
	t := EventFireAlarm
	if !c.Active {
		t = EventFireAlarmCleared
	}
	l.log.Warn("fire alarm", "active", c.Active, "gate", gate)
	l.ev.Emit(Event{Type: t, Source: "fire_alarm", Gate: gate})
}

func (l *lane) exitButton() {
	gate := GateNoBarrier
	if l.relay != nil {
		l.authorise()
		gate = GateOpened
		if err := l.relay.Pulse(context.Background(), l.pulse); err != nil {
			gate = GateNotOpened
			l.log.Error("exit button: barrier did not open", "relay", l.relay.String(), "err", err)
		}
	}
	l.ev.Emit(Event{Type: EventExitButton, Source: "exit_button", Gate: gate})
}

// door handles the door (barrier-position) sensor: active means open.
func (l *lane) door(c inputs.Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.Active == l.doorOpen && !c.Initial {
		return
	}
	l.doorOpen = c.Active
	l.doorSeq++
	seq := l.doorSeq
	if l.doorTimer != nil {
		l.doorTimer.Stop()
		l.doorTimer = nil
	}
	if !c.Active {
		if l.doorAlarm {
			l.doorAlarm = false
			l.ev.Emit(Event{Type: EventDoorClosed, Source: "door_sensor"})
		}
		if l.hold && !c.Initial {
			if pe, ok := l.relay.(pulseEnder); ok {
				if err := pe.EndPulse(); err != nil {
					l.log.Error("door closed: relay did not release", "err", err)
				}
			}
		}
		return
	}
	openedAt := c.At
	held := l.cfg.Inputs.DoorSensor.HeldOpen
	if !c.Initial {
		// Forced open: nothing explains the opening within the grace time. (A door open
		// at start-up only gets the held-open alarm.)
		time.AfterFunc(forcedGrace, func() { l.checkForced(seq, openedAt) })
	}
	l.doorTimer = time.AfterFunc(held, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.doorSeq != seq || !l.doorOpen || l.fire || l.heldByRelay() {
			return
		}
		l.doorAlarm = true
		l.log.Warn("door held open", "for", held)
		l.ev.Emit(Event{Type: EventDoorHeldOpen, Source: "door_sensor"})
	})
}

func (l *lane) checkForced(seq int, openedAt time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.doorSeq != seq || !l.doorOpen || l.fire || l.heldByRelay() {
		return
	}
	if !l.authorised.IsZero() && l.authorised.After(openedAt.Add(-l.pulse-authorisedSlack)) {
		return
	}
	l.doorAlarm = true
	l.log.Warn("door forced open")
	l.ev.Emit(Event{Type: EventDoorForcedOpen, Source: "door_sensor"})
}

// heldByRelay says whether the barrier is held open on purpose (always-open mode).
func (l *lane) heldByRelay() bool {
	h, ok := l.relay.(barrierHolder)
	return ok && h.Held()
}

func (l *lane) stopTimers() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.doorSeq++
	if l.doorTimer != nil {
		l.doorTimer.Stop()
	}
}
