package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sentinel-edge/sentinel/agent/statefile"
)

// modeFileName is the gate mode's state file (ops_state.go), beside the queue.
const modeFileName = "gate-mode.json"

// ErrModeNotPersisted says a mode change took effect but could not be written to its state
// file: a restart would come back in the mode written before.
var ErrModeNotPersisted = errors.New("agent: gate mode not persisted")

// holder is a relay that can stay energised without a time bound (relay.GPIO is one).
type holder interface {
	Hold() error
	Release() error
}

// GateMode is the remote mode switch. The pipeline asks it what the barrier does; the
// always_open mode holds the relay open until the mode changes. The zero value (and nil) is
// normal. With a state file (persistTo) every change is written there, and restore puts the
// written mode back in force at start.
type GateMode struct {
	setMu sync.Mutex // orders changes and their writes: the file always holds the last mode set

	mu      sync.Mutex
	mode    string
	held    bool // this switch holds the relay (always_open asserted); only it releases its hold
	pending bool // always_open restored at start, hold not asserted yet (assertRestored)
	relay   Relay
	onSet   func(mode string)
	path    string // state file; "" when not persisted
	dirty   bool   // the last write failed
}

// NewGateMode returns a switch in normal mode for relay (nil when the unit has no barrier).
// onSet, when set, is called after every change.
func NewGateMode(relay Relay, onSet func(mode string)) *GateMode {
	return &GateMode{mode: ModeNormal, relay: relay, onSet: onSet}
}

// persistTo makes every later change be written to path.
func (g *GateMode) persistTo(path string) {
	g.mu.Lock()
	g.path = path
	g.mu.Unlock()
}

// Mode returns the mode in force.
func (g *GateMode) Mode() string {
	if g == nil {
		return ModeNormal
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.modeLocked()
}

func (g *GateMode) modeLocked() string {
	if g.mode == "" {
		return ModeNormal
	}
	return g.mode
}

// Set changes the mode. always_open needs a relay that can be held; a failure leaves the
// previous mode in force. When the change took effect but its state file could not be
// written, the error wraps ErrModeNotPersisted.
func (g *GateMode) Set(mode string) error { return g.SetBy(mode, "") }

// SetBy is Set, naming who set the mode in the state file (a command id).
func (g *GateMode) SetBy(mode, by string) error {
	g.setMu.Lock()
	defer g.setMu.Unlock()
	changed, err := g.change(mode)
	if err != nil {
		return err
	}
	g.mu.Lock()
	path, dirty, onSet := g.path, g.dirty, g.onSet
	g.mu.Unlock()
	var perr error
	if path != "" && (changed || dirty) {
		perr = g.write(path, mode, by)
	}
	if changed && onSet != nil {
		onSet(mode)
	}
	return perr
}

// change puts mode in force; it reports whether the mode changed.
func (g *GateMode) change(mode string) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	prev := g.modeLocked()
	switch mode {
	case ModeNormal, ModeLocked, ModeAlwaysOpen:
	default:
		return false, fmt.Errorf("agent: unknown gate mode %q (known: normal, always_open, locked)", mode)
	}
	if prev == mode {
		return false, nil
	}
	if mode == ModeAlwaysOpen {
		h, ok := g.relay.(holder)
		if !ok {
			if g.relay == nil {
				return false, fmt.Errorf("agent: mode always_open: this unit has no barrier")
			}
			return false, fmt.Errorf("agent: mode always_open: %s cannot be held open", g.relay)
		}
		if err := h.Hold(); err != nil {
			return false, fmt.Errorf("agent: mode always_open: %w", err)
		}
		g.held = true
	} else if g.held {
		if err := g.relay.(holder).Release(); err != nil {
			return false, fmt.Errorf("agent: mode %s: %w", mode, err)
		}
		g.held = false
	}
	g.mode, g.pending = mode, false
	return true, nil
}

// modeState is the gate mode's state file.
type modeState struct {
	Mode  string `json:"mode"`
	SetAt string `json:"set_at"` // by the unit's clock
	Clock string `json:"clock"`  // how far set_at can be trusted
	By    string `json:"by,omitempty"`
}

func (g *GateMode) write(path, mode, by string) error {
	b, _ := json.Marshal(modeState{Mode: mode, SetAt: time.Now().UTC().Format(tsLayout), Clock: clockState(), By: by})
	err := statefile.Write(path, b)
	g.mu.Lock()
	g.dirty = err != nil
	g.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrModeNotPersisted, err)
	}
	return nil
}

// restore reads the state file and puts its mode in force without touching the relay: the
// relay stays de-energised through start-up. A restored always_open is pending until
// assertRestored holds the relay, once start-up completed. A missing file is normal; a
// corrupt one is moved aside, an unreadable one left, and the unit starts normal. It
// returns the mode in force and what to record (Type empty: nothing to record, or
// recorded later by assertRestored). Call it before the pipeline runs.
func (g *GateMode) restore(path string) (string, Event) {
	g.setMu.Lock()
	defer g.setMu.Unlock()
	g.persistTo(path)
	ev := Event{Type: EventModeRestored, Source: SourceAgent, Mode: ModeNormal}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ModeNormal, Event{}
	}
	if err != nil {
		ev.Detail = "gate mode file unreadable, starting normal: " + err.Error()
		return ModeNormal, ev
	}
	var st modeState
	if err := json.Unmarshal(b, &st); err != nil || (st.Mode != ModeNormal && st.Mode != ModeLocked && st.Mode != ModeAlwaysOpen) {
		why := fmt.Sprintf("unknown mode %q", st.Mode)
		if err != nil {
			why = "not JSON"
		}
		ev.Detail = fmt.Sprintf("gate mode file corrupt (%s), starting normal; moved aside to %s", why, statefile.MoveAside(path))
		return ModeNormal, ev
	}
	g.mu.Lock()
	relay := g.relay
	switch st.Mode {
	case ModeLocked:
		g.mode = ModeLocked
		g.mu.Unlock()
		ev.Mode = ModeLocked
		return ModeLocked, ev
	case ModeAlwaysOpen:
		if _, ok := relay.(holder); ok {
			g.mode, g.pending = ModeAlwaysOpen, true
			g.mu.Unlock()
			return ModeAlwaysOpen, Event{}
		}
	}
	g.mu.Unlock()
	if st.Mode == ModeNormal {
		return ModeNormal, Event{}
	}
	why := "this unit has no barrier"
	if relay != nil {
		why = relay.String() + " cannot be held open"
	}
	ev.Detail = "always_open not restored: " + why + "; starting normal"
	_ = g.write(path, ModeNormal, "restore") // the file says what is in force
	return ModeNormal, ev
}

// assertRestored holds the relay for an always_open restored at start; call it once
// start-up completed. It returns what to record (Type empty: nothing was pending). When
// the relay cannot be held, the unit falls back to normal and says so.
func (g *GateMode) assertRestored() Event {
	g.setMu.Lock()
	defer g.setMu.Unlock()
	g.mu.Lock()
	if !g.pending {
		g.mu.Unlock()
		return Event{}
	}
	g.pending = false
	err := g.relay.(holder).Hold() // restore checked it is a holder
	if err == nil {
		g.held = true
		g.mu.Unlock()
		return Event{Type: EventModeRestored, Source: SourceAgent, Mode: ModeAlwaysOpen, Gate: GateHeldOpen}
	}
	g.mode = ModeNormal
	path, onSet := g.path, g.onSet
	g.mu.Unlock()
	if path != "" {
		_ = g.write(path, ModeNormal, "restore")
	}
	if onSet != nil {
		onSet(ModeNormal)
	}
	return Event{Type: EventModeRestored, Source: SourceAgent, Mode: ModeNormal, Gate: GateNotOpened,
		Detail: "always_open not restored: the relay could not be held (" + err.Error() + "); starting normal"}
}

// releaseHold ends this switch's hold at shutdown without changing the mode or its file: a
// restart restores always_open.
func (g *GateMode) releaseHold() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pending = false
	if !g.held {
		return nil
	}
	g.held = false
	return g.relay.(holder).Release()
}

// apply turns the gate outcome the verdict asks for into what the barrier does in the
// current mode, and returns the mode for the record ("" when normal).
func (g *GateMode) apply(gate string) (string, string) {
	switch m := g.Mode(); m {
	case ModeLocked:
		if gate == GateOpened {
			gate = GateNotOpened
		}
		return gate, m
	case ModeAlwaysOpen:
		if gate != GateNoBarrier {
			gate = GateHeldOpen
		}
		return gate, m
	default:
		return gate, ""
	}
}
