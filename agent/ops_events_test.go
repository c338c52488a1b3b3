package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/clock"
	"github.com/sentinel-edge/sentinel/agent/statefile"

	"github.com/sentinel-edge/sentinel/queue"
)

// rawOutbox keeps what was appended, as bytes.
type rawOutbox struct {
	mu      sync.Mutex
	entries []queue.Entry
	added   chan struct{}
}

func newRawOutbox() *rawOutbox { return &rawOutbox{added: make(chan struct{}, 1024)} }

func (o *rawOutbox) AppendID(_ context.Context, stream, topic, id string, build func(int64, string) ([]byte, error)) (queue.Entry, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if id == "" {
		id = "00000000-0000-4000-8000-00000000000" + string(rune('0'+len(o.entries)%10))
	}
	b, err := build(int64(len(o.entries)+1), id)
	if err != nil {
		return queue.Entry{}, err
	}
	e := queue.Entry{ID: id, Stream: stream, Topic: topic, Payload: b}
	o.entries = append(o.entries, e)
	o.added <- struct{}{}
	return e, nil
}

// wait returns the first n entries, or fails after 5s.
func (o *rawOutbox) wait(t *testing.T, n int) []queue.Entry {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		o.mu.Lock()
		if len(o.entries) >= n {
			es := slices.Clone(o.entries[:n])
			o.mu.Unlock()
			return es
		}
		o.mu.Unlock()
		select {
		case <-o.added:
		case <-deadline:
			t.Fatalf("%d entries appended within 5s, want %d", len(o.entries), n)
		}
	}
}

// waitEvents waits until the daemon's recorder handled n events and returns the events in
// the daemon's outbox.
func waitEvents(t *testing.T, d *Daemon, n int) []Event {
	t.Helper()
	r := d.ops().events
	deadline := time.Now().Add(5 * time.Second)
	for r.stored.Load()+r.failed.Load() < int64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("the recorder handled %d events within 5s, want %d", r.stored.Load()+r.failed.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	pend, err := d.Outbox.Pending(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	for _, e := range pend {
		if e.Stream != StreamEvent {
			continue
		}
		if e.Topic != Topic(d.Cfg, "event") {
			t.Errorf("event on topic %s", e.Topic)
		}
		var ev Event
		if err := json.Unmarshal(e.Payload, &ev); err != nil {
			t.Fatalf("event not JSON: %v", err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func jsonKeys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v", err)
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestOneEventRecord: a device event and a command event are the same record on the same
// stream and topic, through the same recorder, with the fields the platform saw before.
func TestOneEventRecord(t *testing.T) {
	swapClock(t, true, nil)
	ob := newRawOutbox()
	r := newEventRecorder(ob, "sentinel/v1/350582-0001/gate-01/event", "gate-01", "350582-0001", quietLog())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	r.Emit(Event{Type: EventReaderOffline, Source: "idcard", Detail: "read /dev/ttyUSB1: EOF"})
	r.Emit(Event{Type: EventCommand, Source: SourceCommand, Suppressed: 2,
		Command: &CommandReply{ID: "c-1", Name: CmdOpen, Result: ResultOK, Detail: "opened for 800ms"}})
	r.Emit(Event{Type: EventModeRestored, Source: SourceAgent, Mode: ModeLocked})
	es := ob.wait(t, 3)
	envelope := []string{"clock", "device", "id", "seq", "source", "ts", "type", "venue"}
	want := [][]string{
		append(slices.Clone(envelope), "detail"),
		append(slices.Clone(envelope), "command", "suppressed"),
		append(slices.Clone(envelope), "mode"),
	}
	for i, e := range es {
		if e.Stream != "event" || e.Topic != "sentinel/v1/350582-0001/gate-01/event" {
			t.Errorf("event %d on stream %s topic %s", i, e.Stream, e.Topic)
		}
		w := slices.Clone(want[i])
		sort.Strings(w)
		if got := jsonKeys(t, e.Payload); !slices.Equal(got, w) {
			t.Errorf("event %d has fields %v, want %v", i, got, w)
		}
		var ev Event
		_ = json.Unmarshal(e.Payload, &ev)
		if ev.Device != "gate-01" || ev.Venue != "350582-0001" || ev.Clock != clock.Synced || ev.ID == "" || ev.Seq == 0 {
			t.Errorf("event %d envelope %+v", i, ev)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev.TS); err != nil {
			t.Errorf("event %d ts %q: %v", i, ev.TS, err)
		}
	}
	var cmd Event
	_ = json.Unmarshal(es[1].Payload, &cmd)
	if cmd.Command == nil || cmd.Command.ID != "c-1" || cmd.Suppressed != 2 {
		t.Errorf("command event %+v", cmd)
	}
	for _, typ := range EventTypes {
		if !strings.Contains(mustRead(t, "../docs/events.md"), "`"+typ+"`") {
			t.Errorf("docs/events.md does not document type %s", typ)
		}
	}

	// After the recorder stopped, an event is dropped and counted, never left unseen.
	cancel()
	<-done
	before := r.lostTotal.Load()
	r.Emit(Event{Type: EventTamper, Source: "tamper"})
	if r.lostTotal.Load() != before+1 {
		t.Errorf("an event after stop was not counted as lost")
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRefusalRateLimit: a flood of refused commands records at most the burst; the next
// recorded event counts the ones left out; a full command queue never blocks the caller
// and is counted too.
func TestRefusalRateLimit(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	swapClock(t, true, func() time.Time { return now })
	cn, rb, re := cmdNow, refusalBurst, refusalEvery
	cmdNow, refusalBurst, refusalEvery = func() time.Time { return now }, 2, time.Hour
	t.Cleanup(func() { cmdNow, refusalBurst, refusalEvery = cn, rb, re })
	_, priv, _ := ed25519.GenerateKey(nil)
	f := newCmdFixture(t, t.TempDir(), priv)
	for range 5 {
		if r := f.send(t, CmdOpen, []byte(`{"cmd":`)); r.Detail != "malformed" {
			t.Fatalf("junk: %s/%s", r.Result, r.Detail)
		}
	}
	// The commander is not running: its queue fills, and receive must not block.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range cap(f.c.in) + 10 {
			f.c.receive(Topic(f.d.Cfg, "cmd")+"/open", []byte("junk"))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("receive blocked on a full command queue")
	}
	r := f.send(t, CmdMode, f.signed(t, priv, Command{ID: "ok-1", Name: CmdMode, Venue: "350582-0001", Device: "gate-01",
		IssuedAt: now, ExpiresAt: now.Add(time.Minute), Args: map[string]string{"mode": ModeLocked}}))
	if r.Result != ResultOK {
		t.Fatalf("mode: %s/%s", r.Result, r.Detail)
	}
	evs := waitEvents(t, f.d, 3)
	if len(evs) != 3 {
		t.Fatalf("%d events, want 2 refusals and the mode command", len(evs))
	}
	if last := evs[2]; last.Command == nil || last.Command.ID != "ok-1" || last.Suppressed != 3+10 {
		t.Errorf("last event %+v (suppressed %d), want the mode command carrying 3 refusals and 10 overloaded", last.Command, last.Suppressed)
	}
	if got := counterValue(t, f.st, "sentinel_commands_total", map[string]string{"name": "open", "result": "refused:malformed"}); got != 5 {
		t.Errorf("refused:malformed counted %v, want 5", got)
	}
	if got := counterValue(t, f.st, "sentinel_commands_total", map[string]string{"name": "open", "result": "refused:overloaded"}); got != 10 {
		t.Errorf("refused:overloaded counted %v, want 10", got)
	}
}

// counterValue reads a counter or gauge from the daemon's registry (0 when absent).
func counterValue(t *testing.T, st *opsState, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := st.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// failRelay is a holder whose Hold fails.
type failRelay struct{ opsRelay }

func (r *failRelay) Hold() error { return errors.New("line busy") }

// plainRelay can pulse but not hold.
type plainRelay struct{}

func (plainRelay) Pulse(context.Context, time.Duration) error { return nil }
func (plainRelay) Halt() error                                { return nil }
func (plainRelay) String() string                             { return "plain relay" }

func readModeFile(t *testing.T, path string) modeState {
	t.Helper()
	var st modeState
	if err := json.Unmarshal([]byte(mustRead(t, path)), &st); err != nil {
		t.Fatalf("gate mode file: %v", err)
	}
	return st
}

// TestGateModePersisted: every change is written atomically; a restart restores it, locked
// at once and always_open only once start-up completed; bad files and relays fall back to
// normal and say so.
func TestGateModePersisted(t *testing.T) {
	swapClock(t, true, nil)
	dir := t.TempDir()
	path := filepath.Join(dir, modeFileName)

	rel := &opsRelay{}
	g := NewGateMode(rel, nil)
	if _, ev := g.restore(path); ev.Type != "" || g.Mode() != ModeNormal {
		t.Fatalf("no file: mode %s, event %+v", g.Mode(), ev)
	}
	if err := g.SetBy(ModeLocked, "command c-1"); err != nil {
		t.Fatal(err)
	}
	if st := readModeFile(t, path); st.Mode != ModeLocked || st.By != "command c-1" || st.SetAt == "" || st.Clock != clock.Synced {
		t.Errorf("file %+v", st)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}

	// Restart: locked is in force before anything runs, and recorded.
	g2 := NewGateMode(rel, nil)
	mode, ev := g2.restore(path)
	if mode != ModeLocked || g2.Mode() != ModeLocked || ev.Type != EventModeRestored || ev.Mode != ModeLocked || ev.Source != SourceAgent {
		t.Errorf("restored %s, event %+v", mode, ev)
	}
	if gate, m := g2.apply(GateOpened); gate != GateNotOpened || m != ModeLocked {
		t.Errorf("a pass after the restore: gate %s mode %s", gate, m)
	}

	// always_open: restored, but the relay is held only by assertRestored.
	if err := g2.Set(ModeAlwaysOpen); err != nil {
		t.Fatal(err)
	}
	_ = g2.releaseHold() // shutdown: the hold ends, the file keeps always_open
	if _, held := rel.state(); held {
		t.Fatal("releaseHold left the relay held")
	}
	if st := readModeFile(t, path); st.Mode != ModeAlwaysOpen {
		t.Fatalf("shutdown changed the file to %s", st.Mode)
	}
	rel2 := &opsRelay{}
	g3 := NewGateMode(rel2, nil)
	if mode, ev := g3.restore(path); mode != ModeAlwaysOpen || ev.Type != "" {
		t.Errorf("always_open restored %s, event %+v (recorded by assertRestored)", mode, ev)
	}
	if _, held := rel2.state(); held {
		t.Fatal("the relay was energised during start-up")
	}
	ev = g3.assertRestored()
	if _, held := rel2.state(); !held || ev.Mode != ModeAlwaysOpen || ev.Gate != GateHeldOpen {
		t.Errorf("after start-up: held=%v event %+v", held, ev)
	}
	if again := g3.assertRestored(); again.Type != "" {
		t.Errorf("asserted twice: %+v", again)
	}
	if err := g3.Set(ModeNormal); err != nil {
		t.Fatal(err)
	}
	if _, held := rel2.state(); held {
		t.Error("normal after a restored always_open left the relay held")
	}

	// A command changes the mode during start-up: the restore is superseded, nothing is held.
	_ = g3.Set(ModeAlwaysOpen)
	_ = g3.releaseHold()
	rel3 := &opsRelay{}
	g4 := NewGateMode(rel3, nil)
	g4.restore(path)
	if err := g4.Set(ModeNormal); err != nil {
		t.Fatal(err)
	}
	if ev := g4.assertRestored(); ev.Type != "" {
		t.Errorf("a superseded restore asserted: %+v", ev)
	}
	if _, held := rel3.state(); held {
		t.Error("a superseded always_open held the relay")
	}

	// The relay cannot be held at start: normal, written, recorded.
	_ = g4.Set(ModeAlwaysOpen)
	_ = g4.releaseHold()
	g5 := NewGateMode(&failRelay{}, nil)
	g5.restore(path)
	if ev := g5.assertRestored(); ev.Mode != ModeNormal || !strings.Contains(ev.Detail, "line busy") || g5.Mode() != ModeNormal {
		t.Errorf("hold failed at start: mode %s event %+v", g5.Mode(), ev)
	}
	if st := readModeFile(t, path); st.Mode != ModeNormal {
		t.Errorf("file says %s after the fallback", st.Mode)
	}

	// A unit that lost its holdable barrier (config changed): normal, written, recorded.
	_ = statefile.Write(path, []byte(`{"mode":"always_open"}`))
	for _, r := range []Relay{nil, plainRelay{}} {
		g6 := NewGateMode(r, nil)
		if mode, ev := g6.restore(path); mode != ModeNormal || ev.Type != EventModeRestored || !strings.Contains(ev.Detail, "always_open not restored") {
			t.Errorf("relay %v: restored %s, event %+v", r, mode, ev)
		}
		_ = statefile.Write(path, []byte(`{"mode":"always_open"}`))
	}

	// Corrupt files are moved aside, never overwritten; the unit starts normal.
	for _, junk := range []string{`{"mode":`, `{"mode":"party"}`, "\x00\x01"} {
		if err := os.WriteFile(path, []byte(junk), 0o600); err != nil {
			t.Fatal(err)
		}
		g7 := NewGateMode(rel, nil)
		mode, ev := g7.restore(path)
		if mode != ModeNormal || ev.Type != EventModeRestored || !strings.Contains(ev.Detail, "corrupt") {
			t.Errorf("junk %q: restored %s, event %+v", junk, mode, ev)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("junk %q left in place", junk)
		}
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) == 0 {
		t.Error("no corrupt file kept aside")
	}

	// A write that fails: the mode is in force, and the error says it was not persisted.
	g8 := NewGateMode(rel, nil)
	g8.restore(filepath.Join(dir, "gone", modeFileName))
	err := g8.Set(ModeLocked)
	if !errors.Is(err, ErrModeNotPersisted) || g8.Mode() != ModeLocked {
		t.Errorf("unwritable: mode %s, err %v", g8.Mode(), err)
	}
	if err := os.Mkdir(filepath.Join(dir, "gone"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := g8.Set(ModeLocked); err != nil { // the same mode again: written now
		t.Errorf("retry of the write: %v", err)
	}
	if st := readModeFile(t, filepath.Join(dir, "gone", modeFileName)); st.Mode != ModeLocked {
		t.Errorf("retry wrote %s", st.Mode)
	}
}

// TestSetupOpsRestoresMode: the ops part restores the mode before the pipeline runs, holds a
// restored always_open only in Ready, records the restore, and the mode command's reply says
// when the mode could not be persisted.
func TestSetupOpsRestoresMode(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	swapClock(t, true, func() time.Time { return now })
	cn := cmdNow
	cmdNow = func() time.Time { return now }
	t.Cleanup(func() { cmdNow = cn })
	_, priv, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	f := newCmdFixtureIdle(t, dir, priv)
	modePath := statefile.Path(f.d.Cfg.Queue.Path, modeFileName)
	if err := statefile.Write(modePath, []byte(`{"mode":"always_open","set_at":"2026-11-24T20:00:00.000Z","clock":"synced","by":"command c-0"}`)); err != nil {
		t.Fatal(err)
	}
	f.d.Pipeline = &Pipeline{Decider: opsDecision{}, Relay: f.rel}
	readyCalled := false
	f.d.Opt.Ready = func() { readyCalled = true }
	run, err := setupOps(context.Background(), f.d)
	if err != nil {
		t.Fatal(err)
	}
	if f.d.Pipeline.Gate != f.st.mode || f.st.mode.Mode() != ModeAlwaysOpen {
		t.Fatalf("after setup: gate %p mode %s", f.d.Pipeline.Gate, f.st.mode.Mode())
	}
	if _, held := f.rel.state(); held {
		t.Fatal("a restored always_open energised the relay during start-up")
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- run(ctx) }()
	f.d.Opt.Ready()
	if _, held := f.rel.state(); !held || !readyCalled {
		t.Fatalf("after Ready: held=%v, the daemon's Ready called=%v", held, readyCalled)
	}
	evs := waitEvents(t, f.d, 1)
	if len(evs) != 1 || evs[0].Type != EventModeRestored || evs[0].Mode != ModeAlwaysOpen || evs[0].Gate != GateHeldOpen {
		t.Errorf("events %+v, want mode_restored always_open held_open", evs)
	}
	if s := f.st.status(context.Background()); s.Mode != ModeAlwaysOpen {
		t.Errorf("status mode %s", s.Mode)
	}

	// The state directory becomes unwritable: the command is done, and says it did not stick.
	if err := os.Remove(modePath); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(modePath, 0o700); err != nil { // rename onto a directory fails
		t.Fatal(err)
	}
	r := f.send(t, CmdMode, f.signed(t, priv, Command{ID: "m-1", Name: CmdMode, Venue: "350582-0001", Device: "gate-01",
		IssuedAt: now, ExpiresAt: now.Add(time.Minute), Args: map[string]string{"mode": ModeLocked}}))
	if r.Result != ResultOK || !strings.Contains(r.Detail, "NOT persisted") || f.st.mode.Mode() != ModeLocked {
		t.Errorf("mode with an unwritable file: %s/%s, mode %s", r.Result, r.Detail, f.st.mode.Mode())
	}
	if _, held := f.rel.state(); held {
		t.Error("locked left the relay held")
	}

	cancel()
	if err := <-runDone; err != nil {
		t.Errorf("ops run: %v", err)
	}
	if n := len(waitEvents(t, f.d, 2)); n != 2 {
		t.Errorf("%d events after shutdown, want the restore and the command", n)
	}
}

// TestEventsDrainAfterEmitters: at shutdown, an event recorded by a part that is still
// stopping is stored; a part that never says it stopped does not hang the daemon.
func TestEventsDrainAfterEmitters(t *testing.T) {
	swapClock(t, true, nil)
	ew := emitterWait
	t.Cleanup(func() { emitterWait = ew })
	_, priv, _ := ed25519.GenerateKey(nil)
	for _, says := range []bool{true, false} {
		emitterWait = 20 * time.Millisecond
		if says {
			emitterWait = time.Minute
		}
		f := newCmdFixtureIdle(t, t.TempDir(), priv)
		rec, done := f.d.eventEmitter()
		run, err := setupOps(context.Background(), f.d)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		runDone := make(chan error, 1)
		go func() { runDone <- run(ctx) }()
		cancel()
		if says {
			select {
			case <-runDone:
				t.Fatal("the ops part stopped before a part that records events did")
			case <-time.After(50 * time.Millisecond):
			}
			rec.Emit(Event{Type: EventTamper, Source: "tamper"}) // while the part stops
			done()
		}
		select {
		case <-runDone:
		case <-time.After(5 * time.Second):
			t.Fatalf("done said=%v: the ops part never stopped", says)
		}
		if says {
			if evs := waitEvents(t, f.d, 1); len(evs) != 1 || evs[0].Type != EventTamper {
				t.Errorf("events %+v, want the tamper event recorded while stopping", evs)
			}
		}
	}
}
