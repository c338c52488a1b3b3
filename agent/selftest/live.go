package selftest

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/record"
)

// Held is what a running daemon holds, which the live self-test does not claim again: its
// readers (name → online) and its barrier relay ("" when it has none).
type Held struct {
	Readers map[string]bool
	Relay   string
}

// liveChecks are the checks that are safe while the daemon runs: they claim no device.
var liveChecks = []check{
	{"provisioned", checkProvisioned},
	{"platform", checkPlatform},
	{"broker", checkBroker},
	{"clock", checkClock},
	{"disk", checkDisk},
}

// Live is the self-test a running daemon does (the selftest command): the checks that claim
// no device, and the daemon's own view of the devices it holds. The full Run claims the
// scanner port and the relay pin, so it runs with the daemon stopped. It returns the
// outcome (source record.SelftestCommand) with a one-line summary of every check as its
// detail.
func Live(ctx context.Context, cfg *config.Config, opt Options, held Held) record.SelftestState {
	rows, ok := runChecks(ctx, cfg, opt.withDefaults(), liveChecks)
	var parts []string
	for _, r := range rows {
		s := r.Name + ": " + strings.ToLower(string(r.Status))
		if r.Status == StatusFail {
			s += fmt.Sprintf(" (%s)", r.Detail)
		}
		parts = append(parts, s)
	}
	names := make([]string, 0, len(held.Readers))
	for n := range held.Readers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if held.Readers[n] {
			parts = append(parts, "reader "+n+": online")
		} else {
			ok = false
			rows = append(rows, Row{Name: "reader " + n, Result: failed("offline", "")})
			parts = append(parts, "reader "+n+": OFFLINE")
		}
	}
	if held.Relay != "" {
		parts = append(parts, "barrier relay: held by the daemon ("+held.Relay+")")
	}
	st := Outcome(rows, ok, record.SelftestCommand)
	st.Detail = strings.Join(parts, "; ")
	return st
}
