package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/drivers/inputs"
	"github.com/sentinel-edge/sentinel/drivers/relay"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/sim/card"
	"github.com/sentinel-edge/sentinel/sim/population"
	"github.com/sentinel-edge/sentinel/sim/scanner"
	"github.com/sentinel-edge/sentinel/verify"
)

// fireBudget is the behaviour under test: the fire alarm releases every barrier within it.
const fireBudget = 100 * time.Millisecond

// gateOutbox is an outbox that can be made to hang (a full disk, a stuck database) or fail.
type gateOutbox struct {
	mu     sync.Mutex
	gate   chan struct{} // when set, appends wait until it is closed
	err    error
	events []Event
	added  chan Event
}

func newGateOutbox() *gateOutbox { return &gateOutbox{added: make(chan Event, 64)} }

func (o *gateOutbox) AppendID(ctx context.Context, stream, topic, id string, build func(int64, string) ([]byte, error)) (queue.Entry, error) {
	o.mu.Lock()
	gate, err := o.gate, o.err
	o.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return queue.Entry{}, ctx.Err()
		}
	}
	if err != nil {
		return queue.Entry{}, err
	}
	o.mu.Lock()
	seq := int64(len(o.events) + 1)
	o.mu.Unlock()
	b, err := build(seq, "00000000-0000-4000-8000-000000000000")
	if err != nil {
		return queue.Entry{}, err
	}
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return queue.Entry{}, err
	}
	if stream != "event" || !strings.HasSuffix(topic, "/350582-0001/gate-01/event") {
		return queue.Entry{}, errors.New("wrong stream or topic: " + stream + " " + topic)
	}
	o.mu.Lock()
	o.events = append(o.events, ev)
	o.mu.Unlock()
	o.added <- ev
	return queue.Entry{ID: ev.ID, Stream: stream, Topic: topic, Seq: seq, Payload: b}, nil
}

func (o *gateOutbox) wantEvent(t *testing.T, typ string) Event {
	t.Helper()
	select {
	case ev := <-o.added:
		if ev.Type != typ {
			t.Fatalf("event %s (%+v), want %s", ev.Type, ev, typ)
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s event within 5s", typ)
		return Event{}
	}
}

func (o *gateOutbox) noEvent(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case ev := <-o.added:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(within):
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// laneRig is a lane with a real relay and real debounced inputs on gpiotest pins.
type laneRig struct {
	l       *lane
	relay   *relay.GPIO
	out     *gotestPin
	pins    map[string]*gotestPin
	ob      *gateOutbox
	cancel  context.CancelFunc
	stopped chan struct{}
}

type gotestPin = gpiotest.Pin

func relayOn(p *gotestPin) bool {
	p.Lock()
	defer p.Unlock()
	return p.L == gpio.High
}

func newLaneRig(t *testing.T, cfg *config.Config) *laneRig {
	t.Helper()
	oldGrace, oldSlack := forcedGrace, authorisedSlack
	forcedGrace, authorisedSlack = 50*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() { forcedGrace, authorisedSlack = oldGrace, oldSlack })
	r := &laneRig{out: &gotestPin{N: "RELAY"}, pins: map[string]*gotestPin{}, ob: newGateOutbox()}
	rel, err := relay.New(r.out, relay.Options{MaxPulse: cfg.Barrier.MaxPulse})
	if err != nil {
		t.Fatal(err)
	}
	r.relay = rel
	ev := newEventRecorder(r.ob, Topic(cfg, "event"), cfg.Device.ID, cfg.Device.Venue, quietLog())
	ev.clock = func() string { return "synced" }
	r.l = &lane{cfg: cfg, relay: rel, ev: ev, log: quietLog(), pulse: cfg.Barrier.Pulse, hold: cfg.Barrier.Mode == "hold"}
	for name, in := range cfg.Inputs.Named() {
		p := &gotestPin{N: in.Pin, EdgesChan: make(chan gpio.Level, 16)}
		r.pins[name] = p
		i, err := inputs.New(name, p, inputs.Options{ActiveLow: in.ActiveLow, Debounce: in.Debounce}, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		r.l.inputs = append(r.l.inputs, i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.stopped = cancel, make(chan struct{})
	var wg sync.WaitGroup
	for _, in := range r.l.inputs {
		wg.Add(1)
		go func() { defer wg.Done(); _ = in.Run(ctx, r.l.change) }()
	}
	evDone := make(chan struct{})
	go func() { defer close(evDone); _ = ev.Run(ctx) }()
	go func() { wg.Wait(); <-evDone; close(r.stopped) }()
	t.Cleanup(func() {
		r.ob.mu.Lock()
		if r.ob.gate != nil {
			select {
			case <-r.ob.gate:
			default:
				close(r.ob.gate)
			}
		}
		r.ob.mu.Unlock()
		cancel()
		<-r.stopped
		r.l.stopTimers()
		_ = rel.Halt()
	})
	return r
}

// set drives an input's line (active is true for the active level) and waits until the
// debounced input follows.
func (r *laneRig) set(name string, active bool, activeLow bool) {
	r.pins[name].EdgesChan <- gpio.Level(active != activeLow)
	for _, in := range r.l.inputs {
		if in.Name() != name {
			continue
		}
		deadline := time.Now().Add(5 * time.Second)
		for in.Active() != active && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
}

func laneConfig(t *testing.T, extra string) *config.Config {
	t.Helper()
	y := `device: {id: gate-01, venue: "350582-0001", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: /dev/ttyS1}
platform: {url: "http://127.0.0.1:8700"}
barrier: {driver: gpio, pin: GPIO17, pulse: 300ms}
queue: {path: /tmp/q.db}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
` + extra
	cfg, err := config.Parse("lane.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestFireAlarmReleasesWithDatabaseHung: the relay is energised within the budget while the
// outbox hangs, stays energised across pulses until the alarm clears, and the events are
// recorded once the database answers again.
func TestFireAlarmReleasesWithDatabaseHung(t *testing.T) {
	cfg := laneConfig(t, `inputs:
  fire_alarm: {pin: GPIO6, active_low: true, debounce: 20ms}
`)
	r := newLaneRig(t, cfg)
	r.pins["fire_alarm"].Lock()
	r.pins["fire_alarm"].L = gpio.High // idle
	r.pins["fire_alarm"].Unlock()
	gate := make(chan struct{})
	r.ob.mu.Lock()
	r.ob.gate = gate // the database hangs
	r.ob.mu.Unlock()

	start := time.Now()
	r.set("fire_alarm", true, true)
	for !relayOn(r.out) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("fire alarm did not energise the relay within 5s")
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("fire alarm edge to relay energised: %s (debounce 20ms, database hung)", took)
	if took > fireBudget {
		t.Errorf("fire alarm released the barrier after %s, budget %s (debounce 20ms)", took, fireBudget)
	}
	// A pass during the alarm: its pulse ends, the barrier stays released.
	if err := r.relay.Pulse(context.Background(), 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	r.ob.noEvent(t, 100*time.Millisecond) // nothing stored while the database hangs
	if !relayOn(r.out) {
		t.Fatal("a pulse ending during the fire alarm closed the barrier")
	}
	close(gate) // the database comes back
	if ev := r.ob.wantEvent(t, EventFireAlarm); ev.Gate != "held_open" || ev.Source != "fire_alarm" || ev.Device != "gate-01" || ev.TS == "" {
		t.Errorf("fire alarm event %+v", ev)
	}
	r.set("fire_alarm", false, true)
	if ev := r.ob.wantEvent(t, EventFireAlarmCleared); ev.Gate != "released" {
		t.Errorf("cleared event %+v", ev)
	}
	if relayOn(r.out) {
		t.Error("relay still energised after the alarm cleared")
	}
}

// TestFireAlarmWithDatabaseFailing: a failing outbox loses the event (counted on the next
// one) but never the release.
func TestFireAlarmWithDatabaseFailing(t *testing.T) {
	cfg := laneConfig(t, `inputs:
  fire_alarm: {pin: GPIO6, debounce: 5ms}
  tamper: {pin: GPIO7, debounce: 5ms}
`)
	r := newLaneRig(t, cfg)
	r.ob.mu.Lock()
	r.ob.err = errors.New("disk I/O error")
	r.ob.mu.Unlock()
	r.set("fire_alarm", true, false)
	deadline := time.Now().Add(5 * time.Second)
	for !relayOn(r.out) || r.l.ev.failed.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("relay on=%v, failed appends %d", relayOn(r.out), r.l.ev.failed.Load())
		}
		time.Sleep(time.Millisecond)
	}
	r.ob.mu.Lock()
	r.ob.err = nil
	r.ob.mu.Unlock()
	r.set("tamper", true, false)
	if ev := r.ob.wantEvent(t, EventTamper); ev.Lost != 1 {
		t.Errorf("tamper event %+v: want lost=1 for the fire-alarm event the database refused", ev)
	}
}

// TestFireAlarmActiveAtStart: an alarm already on when the agent starts holds the barrier.
func TestFireAlarmActiveAtStart(t *testing.T) {
	out := &gotestPin{N: "RELAY"}
	rel, _ := relay.New(out, relay.Options{})
	ob := newGateOutbox()
	cfg := laneConfig(t, "")
	l := &lane{cfg: cfg, relay: rel, ev: newEventRecorder(ob, Topic(cfg, "event"), "gate-01", "350582-0001", quietLog()), log: quietLog()}
	l.change(inputs.Change{Input: "fire_alarm", Active: true, Initial: true})
	if !relayOn(out) {
		t.Fatal("alarm active at start did not hold the barrier")
	}
}

func TestExitButtonAndDoor(t *testing.T) {
	cfg := laneConfig(t, `inputs:
  exit_button: {pin: GPIO5, debounce: 5ms}
  door_sensor: {pin: GPIO13, debounce: 5ms, held_open: 400ms}
`)
	r := newLaneRig(t, cfg)
	// The exit button opens the barrier and is recorded.
	r.set("exit_button", true, false)
	if ev := r.ob.wantEvent(t, EventExitButton); ev.Gate != GateOpened {
		t.Errorf("exit event %+v", ev)
	}
	if !relayOn(r.out) {
		t.Error("exit button did not energise the relay")
	}
	r.set("exit_button", false, false)
	// The door opens because of it: no alarm; it closes in time: nothing.
	r.set("door_sensor", true, false)
	r.ob.noEvent(t, 150*time.Millisecond)
	r.set("door_sensor", false, false)
	r.ob.noEvent(t, 100*time.Millisecond)

	// Long after, the door opens with no pass: forced open; then held open; then closed.
	time.Sleep(cfg.Barrier.Pulse + authorisedSlack)
	r.set("door_sensor", true, false)
	r.ob.wantEvent(t, EventDoorForcedOpen)
	r.ob.wantEvent(t, EventDoorHeldOpen)
	r.set("door_sensor", false, false)
	r.ob.wantEvent(t, EventDoorClosed)

	// A pass (the pipeline's observer) explains the next opening.
	r.l.authorise()
	r.set("door_sensor", true, false)
	r.ob.noEvent(t, 150*time.Millisecond)
	r.set("door_sensor", false, false)
}

// TestHoldModeReleasesOnDoorClose: in hold mode the relay stays energised until the door
// closed again after the person passed.
func TestHoldModeReleasesOnDoorClose(t *testing.T) {
	cfg := laneConfig(t, `inputs:
  exit_button: {pin: GPIO5, debounce: 5ms}
  door_sensor: {pin: GPIO13, debounce: 5ms}
`)
	cfg.Barrier.Mode = "hold"
	r := newLaneRig(t, cfg)
	r.l.pulse = cfg.Barrier.MaxPulse
	r.set("exit_button", true, false)
	r.ob.wantEvent(t, EventExitButton)
	r.set("door_sensor", true, false)
	r.set("door_sensor", false, false)
	deadline := time.Now().Add(2 * time.Second)
	for relayOn(r.out) {
		if time.Now().After(deadline) {
			t.Fatal("relay still energised 2s after the door closed (max_pulse is 10s)")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestTamperEvents(t *testing.T) {
	cfg := laneConfig(t, `inputs:
  tamper: {pin: GPIO7, active_low: true, debounce: 5ms}
`)
	r := newLaneRig(t, cfg)
	r.pins["tamper"].Lock()
	r.pins["tamper"].L = gpio.High
	r.pins["tamper"].Unlock()
	r.set("tamper", true, true)
	r.ob.wantEvent(t, EventTamper)
	r.set("tamper", false, true)
	r.ob.wantEvent(t, EventTamperCleared)
}

// TestSetupDevicesIDCard builds the devices part from config: the ID-card reader on a pty
// served by the simulator becomes a Source of idcard credentials, and the reader's coming
// online is an event in the real outbox.
func TestSetupDevicesIDCard(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pty simulator is Linux-only")
	}
	dir := t.TempDir()
	port := filepath.Join(dir, "ttyID")
	dup, err := scanner.OpenDuplex(port, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dup.Close()
	people := population.Generate(population.GenerateOptions{Seed: 3, Random: 0})
	sim := card.New(dup, card.Options{})
	info := card.FromPerson(people[0])
	sim.Present(&info)
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	go func() { _ = sim.Serve(sctx) }()

	cfg := laneConfig(t, `inputs:
  fire_alarm: {pin: GPIO6, debounce: 5ms}
`)
	cfg.Scanners.IDCard = &config.IDCardReader{Driver: "sam", Port: port, Baud: 115200}
	pins := map[string]*gotestPin{}
	oldLookup := lookupInputPin
	lookupInputPin = func(name string) (gpio.PinIO, error) {
		p := &gotestPin{N: name, EdgesChan: make(chan gpio.Level, 4)}
		pins[name] = p
		return p, nil
	}
	t.Cleanup(func() { lookupInputPin = oldLookup })
	ob, err := queue.Open(filepath.Join(dir, "q.db"), queue.Options{Synchronous: "NORMAL", Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	out := &gotestPin{N: "RELAY"}
	rel, _ := relay.New(out, relay.Options{})
	d := &Daemon{Cfg: cfg, Log: quietLog(), Outbox: ob, Relay: rel, Pipeline: &Pipeline{Pulse: cfg.Barrier.Pulse}}
	// The daemon's event recorder runs in the ops part; here it runs alone.
	recCtx, recCancel := context.WithCancel(context.Background())
	recDone := make(chan struct{})
	go func() { defer close(recDone); _ = d.ops().events.Run(recCtx) }()
	defer func() { recCancel(); <-recDone }()
	ctx, cancel := context.WithCancel(context.Background())
	run, err := setupDevices(ctx, d)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = run(ctx) }()
	defer func() { cancel(); <-done }()

	var src Source
	for _, s := range d.Sources {
		if _, ok := s.(IDCardSource); ok {
			src = s
		}
	}
	if src == nil {
		t.Fatalf("no ID-card source among %v", d.Sources)
	}
	creds := make(chan verify.Credential, 4)
	go func() { _ = src.Run(ctx, func(c verify.Credential, _ time.Time) { creds <- c }) }()
	select {
	case c := <-creds:
		if c.Kind != verify.KindIDCard || c.IDNumber != info.IDNumber || c.Name != info.Name {
			t.Fatalf("credential kind %s, id matches %v, name matches %v", c.Kind, c.IDNumber == info.IDNumber, c.Name == info.Name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no card read through the source within 10s")
	}
	pins["GPIO6"].EdgesChan <- gpio.High
	deadline := time.Now().Add(5 * time.Second)
	for {
		entries, err := ob.Pending(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, e := range entries {
			var ev Event
			_ = json.Unmarshal(e.Payload, &ev)
			if e.Stream == "event" && e.Topic == "sentinel/v1/350582-0001/gate-01/event" {
				types = append(types, ev.Type+"/"+ev.Source)
			}
		}
		got := strings.Join(types, ",")
		if strings.Contains(got, "reader_online/idcard") && strings.Contains(got, "fire_alarm/fire_alarm") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %q, want reader_online/idcard and fire_alarm", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !relayOn(out) {
		t.Error("fire alarm did not hold the relay")
	}
}

// TestSetupDevicesBadPort: a misconfigured reader port fails start-up naming its key.
func TestSetupDevicesBadPort(t *testing.T) {
	cfg := laneConfig(t, "")
	cfg.Scanners.IDCard = &config.IDCardReader{Driver: "sam", Port: filepath.Join(t.TempDir(), "none"), Baud: 115200}
	d := &Daemon{Cfg: cfg, Log: quietLog(), Pipeline: &Pipeline{}}
	_, err := setupDevices(context.Background(), d)
	if err == nil || !strings.Contains(err.Error(), "scanners.idcard.port") {
		t.Fatalf("err %v, want one naming scanners.idcard.port", err)
	}
	_, statErr := os.Stat(cfg.Scanners.IDCard.Port)
	if statErr == nil {
		t.Fatal("setup created the port")
	}
}
