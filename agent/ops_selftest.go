package agent

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// liveSelftest is the selftest command's: the checks of selftest.go that are safe while the
// daemon runs (they claim no device: provisioning, platform, broker, clock, disk), and the
// daemon's own view of the devices it holds (the readers, the barrier relay). The full
// `sentinel selftest` claims the scanner port and the relay pin, so it runs with the daemon
// stopped.
func liveSelftest(ctx context.Context, d *Daemon) (bool, string, error) {
	safe := []check{
		{"provisioned", checkProvisioned},
		{"platform", checkPlatform},
		{"broker", checkBroker},
		{"clock", checkClock},
		{"disk", checkDisk},
	}
	ok := true
	var parts []string
	for _, c := range safe {
		r := runCheck(ctx, d.Cfg, c)
		if r.Status != CheckPass && r.Status != CheckNotApplicable {
			ok = false
			parts = append(parts, fmt.Sprintf("%s: %s (%s)", c.name, strings.ToLower(string(r.Status)), r.Detail))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %s", c.name, strings.ToLower(string(r.Status))))
	}
	st := d.ops()
	st.mu.Lock()
	var names []string
	for n := range st.readers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if st.readers[n] {
			parts = append(parts, "reader "+n+": online")
		} else {
			ok = false
			parts = append(parts, "reader "+n+": OFFLINE")
		}
	}
	st.mu.Unlock()
	if d.Relay != nil {
		parts = append(parts, "barrier relay: held by the daemon ("+d.Relay.String()+")")
	}
	return ok, strings.Join(parts, "; "), nil
}
