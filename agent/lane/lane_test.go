package lane_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/sentinel-edge/sentinel/agent/clock"
	"github.com/sentinel-edge/sentinel/agent/events"
	"github.com/sentinel-edge/sentinel/agent/lane"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/drivers/inputs"
	"github.com/sentinel-edge/sentinel/drivers/relay"
	"github.com/sentinel-edge/sentinel/drivers/relay/relaytest"
	"github.com/sentinel-edge/sentinel/queue/queuetest"
)

// fireBudget is the behaviour under test: the fire alarm releases every barrier within it.
const fireBudget = 100 * time.Millisecond

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var unit = record.Unit{Prefix: "sentinel/v1", Venue: "350582-0001", Device: "gate-01"}

// rig is a lane with a real relay and real debounced inputs on gpiotest pins, recording into
// an in-memory outbox through the real recorder.
type rig struct {
	l     *lane.Lane
	relay *relay.GPIO
	out   *gpiotest.Pin
	pins  map[string]*gpiotest.Pin
	ins   map[string]*inputs.Input
	low   map[string]bool // active-low inputs
	ob    *queuetest.Outbox
	rec   *events.Recorder
	seen  int // events already looked at
}

type inputSpec struct {
	name      string
	activeLow bool
}

func newRig(t *testing.T, opt lane.Options, specs ...inputSpec) *rig {
	t.Helper()
	r := &rig{out: &gpiotest.Pin{N: "RELAY"}, pins: map[string]*gpiotest.Pin{}, ins: map[string]*inputs.Input{}, low: map[string]bool{}, ob: queuetest.New()}
	max := opt.MaxPulse
	if max == 0 {
		max = 10 * time.Second
	}
	rel, err := relay.New(r.out, relay.Options{MaxPulse: max})
	if err != nil {
		t.Fatal(err)
	}
	r.relay = rel
	r.rec = events.New(r.ob, events.Options{Unit: unit, Log: quiet(), Clock: func() string { return clock.Synced }})
	opt.Relay, opt.Events, opt.Log = rel, r.rec, quiet()
	if opt.Pulse == 0 {
		opt.Pulse = 300 * time.Millisecond
	}
	if opt.ForcedGrace == 0 {
		opt.ForcedGrace = 50 * time.Millisecond
	}
	if opt.AuthorisedSlack == 0 {
		opt.AuthorisedSlack = 100 * time.Millisecond
	}
	r.l = lane.New(opt)
	var ins []lane.Input
	for _, s := range specs {
		p := &gpiotest.Pin{N: s.name, EdgesChan: make(chan gpio.Level, 16)}
		if s.activeLow {
			p.L = gpio.High // idle
		}
		r.pins[s.name] = p
		r.low[s.name] = s.activeLow
		in, err := inputs.New(s.name, p, inputs.Options{ActiveLow: s.activeLow, Debounce: 5 * time.Millisecond}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		r.ins[s.name] = in
		ins = append(ins, in)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.l.Run(ctx, ins) })
	wg.Go(func() { _ = r.rec.Run(ctx) })
	t.Cleanup(func() {
		r.ob.Hold = nil
		cancel()
		wg.Wait()
		_ = rel.Halt()
	})
	return r
}

// set drives an input's line and waits until the debounced input follows.
func (r *rig) set(t *testing.T, name string, active bool) {
	t.Helper()
	in := r.ins[name]
	r.pins[name].EdgesChan <- gpio.Level(active != r.low[name])
	deadline := time.Now().Add(5 * time.Second)
	for in.Active() != active {
		if time.Now().After(deadline) {
			t.Fatalf("input %s did not become active=%v", name, active)
		}
		time.Sleep(time.Millisecond)
	}
}

func relayOn(p *gpiotest.Pin) bool {
	p.Lock()
	defer p.Unlock()
	return p.L == gpio.High
}

// wantEvent waits for the next event and checks its type.
func (r *rig) wantEvent(t *testing.T, typ string) record.Event {
	t.Helper()
	es := r.ob.Wait(t, record.StreamEvent, r.seen+1, 5*time.Second)
	r.seen++
	var ev record.Event
	if err := json.Unmarshal(es[len(es)-1].Payload, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != typ {
		t.Fatalf("event %s (%+v), want %s", ev.Type, ev, typ)
	}
	return ev
}

func (r *rig) noEvent(t *testing.T, within time.Duration) {
	t.Helper()
	time.Sleep(within)
	if es := r.ob.Entries(record.StreamEvent); len(es) > r.seen {
		t.Fatalf("unexpected event %s", es[r.seen].Payload)
	}
}

// TestFireAlarmReleasesWithDatabaseHung: the relay is energised within the budget while the
// outbox hangs, stays energised across pulses until the alarm clears, and the events are
// recorded once the database answers again.
func TestFireAlarmReleasesWithDatabaseHung(t *testing.T) {
	hang := make(chan struct{})
	r := newRig(t, lane.Options{}, inputSpec{lane.InputFireAlarm, true})
	r.ob.Hold = hang // the database hangs

	start := time.Now()
	r.set(t, lane.InputFireAlarm, true)
	for !relayOn(r.out) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("fire alarm did not energise the relay within 5s")
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("fire alarm edge to relay energised: %s (debounce 5ms, database hung)", took)
	if took > fireBudget {
		t.Errorf("fire alarm released the barrier after %s, budget %s", took, fireBudget)
	}
	if got := r.l.State().FireAlarm; got != record.FireAlarmActive {
		t.Errorf("state fire alarm %q", got)
	}
	// A pass during the alarm: its pulse ends, the barrier stays released.
	if _, err := r.l.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.noEvent(t, 100*time.Millisecond) // nothing stored while the database hangs
	if !relayOn(r.out) {
		t.Fatal("a pulse ending during the fire alarm closed the barrier")
	}
	close(hang) // the database comes back
	if ev := r.wantEvent(t, record.EventFireAlarm); ev.Gate != record.GateHeldOpen || ev.Source != lane.InputFireAlarm {
		t.Errorf("fire alarm event %+v", ev)
	}
	r.set(t, lane.InputFireAlarm, false)
	if ev := r.wantEvent(t, record.EventFireAlarmCleared); ev.Gate != record.GateReleased {
		t.Errorf("cleared event %+v", ev)
	}
	time.Sleep(400 * time.Millisecond) // the pass's pulse (300ms) ends
	if relayOn(r.out) {
		t.Error("relay still energised after the alarm cleared")
	}
}

// TestFireAlarmWithDatabaseFailing: a failing outbox loses the event (counted on the next
// one) but never the release.
func TestFireAlarmWithDatabaseFailing(t *testing.T) {
	r := newRig(t, lane.Options{}, inputSpec{lane.InputFireAlarm, false}, inputSpec{lane.InputTamper, false})
	r.ob.SetFail(func(string) error { return errors.New("disk I/O error") })
	r.set(t, lane.InputFireAlarm, true)
	deadline := time.Now().Add(5 * time.Second)
	for !relayOn(r.out) || r.rec.Stats().Failed == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("relay on=%v, failed appends %d", relayOn(r.out), r.rec.Stats().Failed)
		}
		time.Sleep(time.Millisecond)
	}
	r.ob.SetFail(nil)
	r.set(t, lane.InputTamper, true)
	if ev := r.wantEvent(t, record.EventTamper); ev.Lost != 1 {
		t.Errorf("tamper event %+v: want lost=1 for the fire-alarm event the database refused", ev)
	}
	if !r.l.State().Tamper {
		t.Error("state does not show tamper")
	}
}

// TestFireAlarmActiveAtStart: an alarm already on when the agent starts holds the barrier.
func TestFireAlarmActiveAtStart(t *testing.T) {
	rel := relaytest.New()
	l := lane.New(lane.Options{Relay: rel, Pulse: time.Second, Events: events.New(queuetest.New(), events.Options{Unit: unit, Log: quiet()}), Log: quiet()})
	l.Input(inputs.Change{Input: lane.InputFireAlarm, Active: true, Initial: true})
	if !rel.Held() {
		t.Fatal("alarm active at start did not hold the barrier")
	}
	// One inactive at start says normal, not unknown, and holds nothing.
	rel2 := relaytest.New()
	l2 := lane.New(lane.Options{Relay: rel2, Pulse: time.Second, Events: events.New(queuetest.New(), events.Options{Unit: unit, Log: quiet()}), Log: quiet()})
	if got := l2.State().FireAlarm; got != record.FireAlarmUnknown {
		t.Fatalf("before any report: %q", got)
	}
	l2.Input(inputs.Change{Input: lane.InputFireAlarm, Active: false, Initial: true})
	if rel2.Held() || l2.State().FireAlarm != record.FireAlarmNormal {
		t.Fatalf("inactive at start: held %v, state %q", rel2.Held(), l2.State().FireAlarm)
	}
}

func TestExitButtonAndDoor(t *testing.T) {
	r := newRig(t, lane.Options{DoorHeldOpen: 400 * time.Millisecond}, inputSpec{lane.InputExitButton, false}, inputSpec{lane.InputDoorSensor, false})
	// The exit button opens the barrier and is recorded.
	r.set(t, lane.InputExitButton, true)
	if ev := r.wantEvent(t, record.EventExitButton); ev.Gate != record.GateOpened {
		t.Errorf("exit event %+v", ev)
	}
	if !relayOn(r.out) {
		t.Error("exit button did not energise the relay")
	}
	r.set(t, lane.InputExitButton, false)
	// The door opens because of it: no alarm; it closes in time: nothing.
	r.set(t, lane.InputDoorSensor, true)
	r.noEvent(t, 150*time.Millisecond)
	r.set(t, lane.InputDoorSensor, false)
	r.noEvent(t, 100*time.Millisecond)

	// Long after, the door opens with no opening: forced open; then held open; then closed.
	time.Sleep(300*time.Millisecond + 100*time.Millisecond)
	r.set(t, lane.InputDoorSensor, true)
	r.wantEvent(t, record.EventDoorForcedOpen)
	r.wantEvent(t, record.EventDoorHeldOpen)
	r.set(t, lane.InputDoorSensor, false)
	r.wantEvent(t, record.EventDoorClosed)

	// An opening through Open (a pass, a remote open) explains the next one.
	if _, err := r.l.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.set(t, lane.InputDoorSensor, true)
	r.noEvent(t, 150*time.Millisecond)
	r.set(t, lane.InputDoorSensor, false)
}

// TestHoldModeReleasesOnDoorClose: in hold mode the relay stays energised until the door
// closed again after the person passed, and never longer than max_pulse.
func TestHoldModeReleasesOnDoorClose(t *testing.T) {
	r := newRig(t, lane.Options{HoldUntilClosed: true, MaxPulse: 10 * time.Second}, inputSpec{lane.InputExitButton, false}, inputSpec{lane.InputDoorSensor, false})
	r.set(t, lane.InputExitButton, true)
	r.wantEvent(t, record.EventExitButton)
	r.set(t, lane.InputDoorSensor, true)
	r.set(t, lane.InputDoorSensor, false)
	deadline := time.Now().Add(2 * time.Second)
	for relayOn(r.out) {
		if time.Now().After(deadline) {
			t.Fatal("relay still energised 2s after the door closed (max_pulse is 10s)")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestTamperEvents(t *testing.T) {
	r := newRig(t, lane.Options{}, inputSpec{lane.InputTamper, true})
	r.set(t, lane.InputTamper, true)
	r.wantEvent(t, record.EventTamper)
	r.set(t, lane.InputTamper, false)
	r.wantEvent(t, record.EventTamperCleared)
}

// TestOpenBoundedByMaxPulse: every opening is bounded by max_pulse — in hold mode it asks
// for max_pulse exactly, never more; a pulse configured above it is cut to it.
func TestOpenBoundedByMaxPulse(t *testing.T) {
	for _, tt := range []struct {
		name string
		opt  lane.Options
		want time.Duration
	}{
		{"pulse", lane.Options{Pulse: 800 * time.Millisecond, MaxPulse: 5 * time.Second}, 800 * time.Millisecond},
		{"hold mode", lane.Options{Pulse: 800 * time.Millisecond, MaxPulse: 5 * time.Second, HoldUntilClosed: true}, 5 * time.Second},
		{"pulse above max", lane.Options{Pulse: 8 * time.Second, MaxPulse: 5 * time.Second}, 5 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rel := relaytest.New()
			tt.opt.Relay, tt.opt.Events, tt.opt.Log = rel, events.New(queuetest.New(), events.Options{Unit: unit}), quiet()
			d, err := lane.New(tt.opt).Open(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := <-rel.C; got != tt.want || d != tt.want {
				t.Fatalf("pulsed %s (reported %s), want %s", got, d, tt.want)
			}
		})
	}
	if _, err := lane.New(lane.Options{Events: events.New(queuetest.New(), events.Options{Unit: unit})}).Open(context.Background()); !errors.Is(err, lane.ErrNoBarrier) {
		t.Fatalf("no barrier: %v", err)
	}
}

// TestPlan: what the barrier does for a verdict in each gate mode.
func TestPlan(t *testing.T) {
	rel := relaytest.New()
	l := lane.New(lane.Options{Relay: rel, Pulse: time.Second, Events: events.New(queuetest.New(), events.Options{Unit: unit}), Log: quiet()})
	for _, tt := range []struct {
		mode     string
		pass     bool
		gate     string
		gateMode string
	}{
		{record.GateModeNormal, true, record.GateOpened, ""},
		{record.GateModeNormal, false, record.GateNotOpened, ""},
		{record.GateModeLocked, true, record.GateNotOpened, record.GateModeLocked},
		{record.GateModeLocked, false, record.GateNotOpened, record.GateModeLocked},
		{record.GateModeAlwaysOpen, false, record.GateHeldOpen, record.GateModeAlwaysOpen},
		{record.GateModeAlwaysOpen, true, record.GateHeldOpen, record.GateModeAlwaysOpen},
	} {
		if err := l.SetGateMode(tt.mode, "test"); err != nil {
			t.Fatal(err)
		}
		if gate, m := l.Plan(tt.pass); gate != tt.gate || m != tt.gateMode {
			t.Errorf("mode %s pass %v: gate %s mode %q, want %s %q", tt.mode, tt.pass, gate, m, tt.gate, tt.gateMode)
		}
	}
	noBarrier := lane.New(lane.Options{Events: events.New(queuetest.New(), events.Options{Unit: unit})})
	if gate, _ := noBarrier.Plan(true); gate != record.GateNoBarrier {
		t.Errorf("no barrier: gate %s", gate)
	}
}
