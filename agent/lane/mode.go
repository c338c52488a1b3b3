package lane

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/statefile"
)

// ModeFileName is the gate mode's state file, beside the queue.
const ModeFileName = "gate-mode.json"

// gateMode is the remote mode switch. always_open holds the relay until the mode changes.
// With a state file every change is written there, and restore puts the written mode back
// in force at start.
type gateMode struct {
	relay Relay
	path  string // state file; "" when not persisted
	clock func() string

	setMu sync.Mutex // orders changes and their writes: the file always holds the last mode set

	mu      sync.Mutex
	mode    string
	held    bool // this switch holds the relay (always_open asserted); only it releases its hold
	pending bool // always_open restored at start, hold not asserted yet (assert)
	dirty   bool // the last write failed
}

// modeState is the gate mode's state file.
type modeState struct {
	Mode  string `json:"mode"`
	SetAt string `json:"set_at"` // by the unit's clock
	Clock string `json:"clock"`  // how far set_at can be trusted
	By    string `json:"by,omitempty"`
}

func (g *gateMode) get() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.modeLocked()
}

func (g *gateMode) modeLocked() string {
	if g.mode == "" {
		return record.GateModeNormal
	}
	return g.mode
}

// GateMode returns the gate mode in force.
func (l *Lane) GateMode() string { return l.mode.get() }

// SetGateMode changes the gate mode; by names who set it in the state file (a command id).
// always_open needs a barrier; a failure leaves the previous mode in force. When the change
// took effect but its state file could not be written, the error wraps ErrModeNotPersisted.
func (l *Lane) SetGateMode(mode, by string) error {
	g := &l.mode
	g.setMu.Lock()
	defer g.setMu.Unlock()
	changed, err := g.change(mode)
	if err != nil {
		return err
	}
	g.mu.Lock()
	dirty := g.dirty
	g.mu.Unlock()
	var perr error
	if g.path != "" && (changed || dirty) {
		perr = g.write(mode, by)
	}
	if changed {
		l.changed()
	}
	return perr
}

// change puts mode in force; it reports whether the mode changed.
func (g *gateMode) change(mode string) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !slices.Contains(record.GateModes, mode) {
		return false, fmt.Errorf("lane: unknown gate mode %q (known: normal, always_open, locked)", mode)
	}
	if g.modeLocked() == mode {
		return false, nil
	}
	if mode == record.GateModeAlwaysOpen {
		if g.relay == nil {
			return false, fmt.Errorf("lane: mode always_open: %w", ErrNoBarrier)
		}
		if err := g.relay.Hold(); err != nil {
			return false, fmt.Errorf("lane: mode always_open: %w", err)
		}
		g.held = true
	} else if g.held {
		if err := g.relay.Release(); err != nil {
			return false, fmt.Errorf("lane: mode %s: %w", mode, err)
		}
		g.held = false
	}
	g.mode, g.pending = mode, false
	return true, nil
}

func (g *gateMode) write(mode, by string) error {
	b, _ := json.Marshal(modeState{Mode: mode, SetAt: record.TS(time.Now()), Clock: g.clock(), By: by})
	err := statefile.Write(g.path, b)
	g.mu.Lock()
	g.dirty = err != nil
	g.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrModeNotPersisted, err)
	}
	return nil
}

// RestoreGateMode reads the state file and puts its mode in force without touching the
// relay: the relay stays de-energised through start-up; a restored always_open holds it only
// at AssertGateMode. A missing file is normal; a corrupt one is moved aside, an unreadable
// one left, and the unit starts normal; either is recorded and logged. Call it before the
// pipeline runs. It returns the mode in force.
func (l *Lane) RestoreGateMode() string {
	mode, ev := l.mode.restore()
	if ev.Type != "" {
		l.recordRestore(ev)
	}
	if mode != record.GateModeNormal {
		l.changed()
	}
	return mode
}

// AssertGateMode holds the relay for an always_open restored at start; call it once
// start-up completed. When the relay cannot be held, the lane falls back to normal and says
// so.
func (l *Lane) AssertGateMode() {
	ev, fellBack := l.mode.assert()
	if ev.Type == "" {
		return
	}
	l.recordRestore(ev)
	if fellBack {
		l.changed()
	}
}

func (l *Lane) recordRestore(ev record.Event) {
	if ev.Detail != "" {
		l.opt.Log.Error("gate mode not restored as written", "mode", ev.Mode, "detail", ev.Detail)
	} else {
		l.opt.Log.Warn("gate mode restored", "mode", ev.Mode, "gate", ev.Gate)
	}
	l.opt.Events.Emit(ev)
}

func (g *gateMode) restore() (string, record.Event) {
	g.setMu.Lock()
	defer g.setMu.Unlock()
	if g.path == "" {
		return record.GateModeNormal, record.Event{}
	}
	ev := record.Event{Type: record.EventModeRestored, Source: record.SourceAgent, Mode: record.GateModeNormal}
	b, err := os.ReadFile(g.path)
	if errors.Is(err, os.ErrNotExist) {
		return record.GateModeNormal, record.Event{}
	}
	if err != nil {
		ev.Detail = "gate mode file unreadable, starting normal: " + err.Error()
		return record.GateModeNormal, ev
	}
	var st modeState
	if err := json.Unmarshal(b, &st); err != nil || !slices.Contains(record.GateModes, st.Mode) {
		why := fmt.Sprintf("unknown mode %q", st.Mode)
		if err != nil {
			why = "not JSON"
		}
		ev.Detail = fmt.Sprintf("gate mode file corrupt (%s), starting normal; moved aside to %s", why, statefile.MoveAside(g.path))
		return record.GateModeNormal, ev
	}
	switch {
	case st.Mode == record.GateModeNormal:
		return record.GateModeNormal, record.Event{}
	case st.Mode == record.GateModeLocked:
		g.mu.Lock()
		g.mode = record.GateModeLocked
		g.mu.Unlock()
		ev.Mode = record.GateModeLocked
		return record.GateModeLocked, ev
	case g.relay != nil: // always_open, asserted once start-up completed
		g.mu.Lock()
		g.mode, g.pending = record.GateModeAlwaysOpen, true
		g.mu.Unlock()
		return record.GateModeAlwaysOpen, record.Event{}
	}
	ev.Detail = "always_open not restored: this unit has no barrier; starting normal"
	_ = g.write(record.GateModeNormal, "restore") // the file says what is in force
	return record.GateModeNormal, ev
}

// assert holds the relay for a pending always_open; it returns what to record (Type empty:
// nothing was pending) and whether it fell back to normal.
func (g *gateMode) assert() (record.Event, bool) {
	g.setMu.Lock()
	defer g.setMu.Unlock()
	g.mu.Lock()
	if !g.pending {
		g.mu.Unlock()
		return record.Event{}, false
	}
	g.pending = false
	err := g.relay.Hold() // restore checked there is one
	if err == nil {
		g.held = true
		g.mu.Unlock()
		return record.Event{Type: record.EventModeRestored, Source: record.SourceAgent, Mode: record.GateModeAlwaysOpen, Gate: record.GateHeldOpen}, false
	}
	g.mode = record.GateModeNormal
	g.mu.Unlock()
	if g.path != "" {
		_ = g.write(record.GateModeNormal, "restore")
	}
	return record.Event{Type: record.EventModeRestored, Source: record.SourceAgent, Mode: record.GateModeNormal, Gate: record.GateNotOpened,
		Detail: "always_open not restored: the relay could not be held (" + err.Error() + "); starting normal"}, true
}

// Stop ends the lane's holds at shutdown — the gate mode's always_open — without changing
// the mode or its file: a restart restores always_open. The caller halts the relay after.
func (l *Lane) Stop() error {
	g := &l.mode
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pending = false
	if !g.held {
		return nil
	}
	g.held = false
	return g.relay.Release()
}
