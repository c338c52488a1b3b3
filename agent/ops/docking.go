package ops

import (
	"fmt"
	"strings"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/record"
)

// The docking rule (docs/operations.md, "Docked"): what the city's installation table
// reads as "docking done" and "progress", derived from facts the unit holds, each "no"
// with its reason.

// dockingFacts are the facts docked is derived from.
type dockingFacts struct {
	now     time.Time
	install config.Install
	// The last outcome of each kind of verification; nil when none ran.
	selftest, dockingCheck, platformCheck *record.SelftestState
	lastPlatformOK                        time.Time // the last successful answer; zero: none since start
	maxAge, maxSilence                    time.Duration
}

// missingInstall lists the install facts the table needs that the config leaves empty.
func missingInstall(in config.Install) []string {
	var m []string
	for _, f := range []struct{ key, v string }{{"install.unit", in.Unit}, {"install.location", in.Location}, {"install.brand", in.Brand}} {
		if strings.TrimSpace(f.v) == "" {
			m = append(m, f.key)
		}
	}
	return m
}

// installWhy says why the unit is not installed yet (nil when it is): install.status says
// so, or a fact of the table is missing (a unit that was only provisioned).
func installWhy(in config.Install) []string {
	var why []string
	if in.Status != config.InstallInstalled {
		why = append(why, fmt.Sprintf("install.status is %s", orNone(in.Status)))
	}
	if m := missingInstall(in); len(m) > 0 {
		why = append(why, strings.Join(m, ", ")+" not set (the city's table needs them)")
	}
	return why
}

func orNone(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// lastOf and verificationName are how a reason names the last verification of a kind, and
// a kind.
var (
	lastOf = map[string]string{
		record.SelftestCLI:      "the last sentinel selftest",
		record.SelftestCommand:  "the last selftest command",
		record.SelftestDocking:  "the last sentinel docking-check",
		record.SelftestPlatform: "the daemon's last platform check",
	}
	verificationName = map[string]string{
		record.SelftestCLI:      "sentinel selftest",
		record.SelftestCommand:  "the selftest command",
		record.SelftestDocking:  "sentinel docking-check",
		record.SelftestPlatform: "the daemon's platform check",
	}
)

func describeFailure(v *record.SelftestState) string {
	name := lastOf[v.Source]
	if name == "" {
		name = "the last " + orNone(v.Source) + " check"
	}
	s := fmt.Sprintf("%s (%s) failed", name, v.At)
	if len(v.Failed) > 0 {
		s += ": " + strings.Join(v.Failed, ", ")
	}
	if v.Source == record.SelftestCLI || v.Source == record.SelftestCommand || v.Source == record.SelftestDocking {
		s += "; fix it and run it again"
	}
	return s
}

// dockingRule derives docked, its evidence and the installation's progress. The unit is
// docked only when every one holds:
//   - it is installed: install.status installed, and install.unit, location and brand set;
//   - the last selftest, the last docking-check and the daemon's last platform check, each
//     where one ran, passed (a failed one is fixed by running it again);
//   - one of them passed within maxAge (the evidence: which, when, which version);
//   - the platform answered within maxSilence.
func dockingRule(f dockingFacts) (bool, record.DockingState, record.Progress) {
	var d record.DockingState
	var why []string
	var newest time.Time
	for _, v := range []*record.SelftestState{f.selftest, f.dockingCheck, f.platformCheck} {
		if v == nil {
			continue
		}
		if !v.OK {
			why = append(why, describeFailure(v))
			continue
		}
		if at, err := time.Parse(time.RFC3339Nano, v.At); err == nil && (d.Check == "" || at.After(newest)) {
			newest = at
			d.Check, d.At, d.Version = v.Source, v.At, v.Version
		}
	}
	switch {
	case d.Check == "" && len(why) == 0:
		why = append(why, "no docking verification yet (run sentinel docking-check, or sentinel selftest)")
	case d.Check == "":
	case f.now.Sub(newest) > f.maxAge:
		why = append(why, fmt.Sprintf("the last docking verification that passed (%s, %s) is older than status.docked_max_age (%s)", verificationName[d.Check], d.At, f.maxAge))
	}
	switch {
	case f.lastPlatformOK.IsZero():
		why = append(why, "the platform has not answered since the unit started")
	case f.now.Sub(f.lastPlatformOK) > f.maxSilence:
		why = append(why, fmt.Sprintf("the platform has not answered since %s (status.platform_max_silence %s)", record.TS(f.lastPlatformOK), f.maxSilence))
	}
	inst := installWhy(f.install)
	p := record.Progress{Of: record.Steps}
	switch {
	case len(inst) > 0:
		p.Step, p.State, p.Why = record.StepInstalling, config.InstallInstalling, inst
	case len(why) > 0:
		p.Step, p.State, p.Why = record.StepInstalled, config.InstallInstalled, why
	default:
		p.Step, p.State = record.StepDocked, "docked"
	}
	d.Why = append(inst, why...)
	return len(d.Why) == 0, d, p
}
