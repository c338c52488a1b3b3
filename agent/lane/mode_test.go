package lane_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/clock"
	"github.com/sentinel-edge/sentinel/agent/lane"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/statefile"
	"github.com/sentinel-edge/sentinel/drivers/relay/relaytest"
)

type modeFile struct {
	Mode  string `json:"mode"`
	SetAt string `json:"set_at"`
	Clock string `json:"clock"`
	By    string `json:"by"`
}

func readModeFile(t *testing.T, path string) modeFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st modeFile
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("gate mode file: %v", err)
	}
	return st
}

// capture keeps the events a lane emits.
type capture struct {
	mu  sync.Mutex
	evs []record.Event
}

func (c *capture) Emit(ev record.Event) { c.mu.Lock(); c.evs = append(c.evs, ev); c.mu.Unlock() }

// take returns the events emitted since the last take.
func (c *capture) take() []record.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	evs := c.evs
	c.evs = nil
	return evs
}

// modeLane is a lane without inputs whose gate mode persists to path (nil relay: no barrier).
func modeLane(rel lane.Relay, path string) (*lane.Lane, *capture) {
	c := &capture{}
	return lane.New(lane.Options{Relay: rel, Pulse: time.Second, ModeFile: path, Events: c, Log: quiet(),
		Clock: func() string { return clock.Synced }}), c
}

// TestGateModePersisted: every change is written atomically; a restart restores it, locked
// at once and always_open only once start-up completed; bad files and relays fall back to
// normal and say so.
func TestGateModePersisted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, lane.ModeFileName)

	rel := relaytest.New()
	l, c := modeLane(rel, path)
	if mode := l.RestoreGateMode(); mode != record.GateModeNormal || len(c.take()) != 0 {
		t.Fatalf("no file: mode %s", mode)
	}
	if err := l.SetGateMode(record.GateModeLocked, "command c-1"); err != nil {
		t.Fatal(err)
	}
	if st := readModeFile(t, path); st.Mode != record.GateModeLocked || st.By != "command c-1" || st.SetAt == "" || st.Clock != clock.Synced {
		t.Errorf("file %+v", st)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}

	// Restart: locked is in force before anything runs, and recorded.
	l2, c2 := modeLane(rel, path)
	if mode := l2.RestoreGateMode(); mode != record.GateModeLocked || l2.GateMode() != record.GateModeLocked {
		t.Errorf("restored %s", mode)
	}
	if evs := c2.take(); len(evs) != 1 || evs[0].Type != record.EventModeRestored || evs[0].Mode != record.GateModeLocked || evs[0].Source != record.SourceAgent {
		t.Errorf("restore events %+v", evs)
	}
	if gate, m := l2.Plan(true); gate != record.GateNotOpened || m != record.GateModeLocked {
		t.Errorf("a pass after the restore: gate %s mode %s", gate, m)
	}

	// always_open: restored, but the relay is held only by AssertGateMode.
	if err := l2.SetGateMode(record.GateModeAlwaysOpen, ""); err != nil {
		t.Fatal(err)
	}
	_ = l2.Stop() // shutdown: the hold ends, the file keeps always_open
	if rel.Held() {
		t.Fatal("Stop left the relay held")
	}
	if st := readModeFile(t, path); st.Mode != record.GateModeAlwaysOpen {
		t.Fatalf("shutdown changed the file to %s", st.Mode)
	}
	rel2 := relaytest.New()
	l3, c3 := modeLane(rel2, path)
	if mode := l3.RestoreGateMode(); mode != record.GateModeAlwaysOpen || len(c3.take()) != 0 {
		t.Errorf("always_open restored %s (recorded by AssertGateMode)", mode)
	}
	if rel2.Held() {
		t.Fatal("the relay was energised during start-up")
	}
	l3.AssertGateMode()
	if evs := c3.take(); !rel2.Held() || len(evs) != 1 || evs[0].Mode != record.GateModeAlwaysOpen || evs[0].Gate != record.GateHeldOpen {
		t.Errorf("after start-up: held=%v events %+v", rel2.Held(), evs)
	}
	l3.AssertGateMode()
	if evs := c3.take(); len(evs) != 0 {
		t.Errorf("asserted twice: %+v", evs)
	}
	if err := l3.SetGateMode(record.GateModeNormal, ""); err != nil {
		t.Fatal(err)
	}
	if rel2.Held() {
		t.Error("normal after a restored always_open left the relay held")
	}

	// A command changes the mode during start-up: the restore is superseded, nothing is held.
	_ = l3.SetGateMode(record.GateModeAlwaysOpen, "")
	_ = l3.Stop()
	rel3 := relaytest.New()
	l4, c4 := modeLane(rel3, path)
	l4.RestoreGateMode()
	if err := l4.SetGateMode(record.GateModeNormal, ""); err != nil {
		t.Fatal(err)
	}
	c4.take()
	l4.AssertGateMode()
	if evs := c4.take(); len(evs) != 0 || rel3.Held() {
		t.Errorf("a superseded restore asserted: %+v held %v", evs, rel3.Held())
	}

	// The relay cannot be held at start: normal, written, recorded.
	_ = l4.SetGateMode(record.GateModeAlwaysOpen, "")
	_ = l4.Stop()
	failing := relaytest.New()
	failing.HoldErr = errors.New("line busy")
	l5, c5 := modeLane(failing, path)
	l5.RestoreGateMode()
	l5.AssertGateMode()
	if evs := c5.take(); len(evs) != 1 || evs[0].Mode != record.GateModeNormal || !strings.Contains(evs[0].Detail, "line busy") || l5.GateMode() != record.GateModeNormal {
		t.Errorf("hold failed at start: mode %s events %+v", l5.GateMode(), evs)
	}
	if st := readModeFile(t, path); st.Mode != record.GateModeNormal {
		t.Errorf("file says %s after the fallback", st.Mode)
	}

	// A unit that lost its barrier (config changed): normal, written, recorded.
	_ = statefile.Write(path, []byte(`{"mode":"always_open"}`))
	l6, c6 := modeLane(nil, path)
	if mode := l6.RestoreGateMode(); mode != record.GateModeNormal {
		t.Errorf("no barrier: restored %s", mode)
	}
	if evs := c6.take(); len(evs) != 1 || evs[0].Type != record.EventModeRestored || !strings.Contains(evs[0].Detail, "always_open not restored") {
		t.Errorf("no barrier: events %+v", evs)
	}
	if st := readModeFile(t, path); st.Mode != record.GateModeNormal {
		t.Errorf("no barrier: file says %s", st.Mode)
	}

	// Corrupt files are moved aside, never overwritten; the unit starts normal.
	for _, junk := range []string{`{"mode":`, `{"mode":"party"}`, "\x00\x01"} {
		if err := os.WriteFile(path, []byte(junk), 0o600); err != nil {
			t.Fatal(err)
		}
		l7, c7 := modeLane(rel, path)
		mode := l7.RestoreGateMode()
		if evs := c7.take(); mode != record.GateModeNormal || len(evs) != 1 || !strings.Contains(evs[0].Detail, "corrupt") {
			t.Errorf("junk %q: restored %s, events %+v", junk, mode, evs)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("junk %q left in place", junk)
		}
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) == 0 {
		t.Error("no corrupt file kept aside")
	}

	// A write that fails: the mode is in force, and the error says it was not persisted.
	gone := filepath.Join(dir, "gone", lane.ModeFileName)
	l8, _ := modeLane(rel, gone)
	l8.RestoreGateMode()
	err := l8.SetGateMode(record.GateModeLocked, "")
	if !errors.Is(err, lane.ErrModeNotPersisted) || l8.GateMode() != record.GateModeLocked {
		t.Errorf("unwritable: mode %s, err %v", l8.GateMode(), err)
	}
	if err := os.Mkdir(filepath.Join(dir, "gone"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := l8.SetGateMode(record.GateModeLocked, ""); err != nil { // the same mode again: written now
		t.Errorf("retry of the write: %v", err)
	}
	if st := readModeFile(t, gone); st.Mode != record.GateModeLocked {
		t.Errorf("retry wrote %s", st.Mode)
	}

	// always_open needs a barrier; an unknown mode is refused by name.
	if err := l6.SetGateMode(record.GateModeAlwaysOpen, ""); !errors.Is(err, lane.ErrNoBarrier) {
		t.Errorf("always_open without a barrier: %v", err)
	}
	if err := l.SetGateMode("party", ""); err == nil || !strings.Contains(err.Error(), `"party"`) {
		t.Errorf("unknown mode: %v", err)
	}
}
