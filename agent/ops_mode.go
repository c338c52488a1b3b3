package agent

import (
	"fmt"
	"sync"
)

// Gate modes a remote command may set.
const (
	ModeNormal     = "normal"      // the verdict decides
	ModeAlwaysOpen = "always_open" // the barrier is held open; passages are still checked and recorded
	ModeLocked     = "locked"      // the barrier never opens; passages are still checked and recorded
)

// GateModes lists the modes in documentation order.
var GateModes = []string{ModeNormal, ModeAlwaysOpen, ModeLocked}

// holder is a relay that can stay energised without a time bound (relay.GPIO is one).
type holder interface {
	Hold() error
	Release() error
}

// GateMode is the remote mode switch. The pipeline asks it what the barrier does; the
// always_open mode holds the relay open until the mode changes. The zero value (and nil) is
// normal.
type GateMode struct {
	mu    sync.Mutex
	mode  string
	relay Relay // nil for a unit without a barrier
	onSet func(mode string)
}

// NewGateMode returns a switch in normal mode for relay (nil when the unit has no barrier).
// onSet, when set, is called after every change.
func NewGateMode(relay Relay, onSet func(mode string)) *GateMode {
	return &GateMode{mode: ModeNormal, relay: relay, onSet: onSet}
}

// Mode returns the mode in force.
func (g *GateMode) Mode() string {
	if g == nil {
		return ModeNormal
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mode == "" {
		return ModeNormal
	}
	return g.mode
}

// Set changes the mode. always_open needs a relay that can be held; a failure leaves the
// previous mode in force.
func (g *GateMode) Set(mode string) error {
	g.mu.Lock()
	prev := g.mode
	if prev == "" {
		prev = ModeNormal
	}
	if prev == mode {
		g.mu.Unlock()
		return nil
	}
	var err error
	switch mode {
	case ModeNormal, ModeLocked:
		if prev == ModeAlwaysOpen {
			if h, ok := g.relay.(holder); ok {
				err = h.Release()
			}
		}
	case ModeAlwaysOpen:
		h, ok := g.relay.(holder)
		if !ok {
			g.mu.Unlock()
			if g.relay == nil {
				return fmt.Errorf("agent: mode always_open: this unit has no barrier")
			}
			return fmt.Errorf("agent: mode always_open: %s cannot be held open", g.relay)
		}
		err = h.Hold()
	default:
		g.mu.Unlock()
		return fmt.Errorf("agent: unknown gate mode %q (known: normal, always_open, locked)", mode)
	}
	if err != nil {
		g.mu.Unlock()
		return fmt.Errorf("agent: mode %s: %w", mode, err)
	}
	g.mode = mode
	onSet := g.onSet
	g.mu.Unlock()
	if onSet != nil {
		onSet(mode)
	}
	return nil
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
