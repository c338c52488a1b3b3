package selftest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/record"
)

// TestSelfTestBenchUnit (issue #14, finding 5): a bench unit with barrier.driver fake and the
// template's active-low inputs passes its selftest; the relay and input rows say they are
// simulated, so that a real gate left on the fake driver is caught by whoever reads them.
func TestSelfTestBenchUnit(t *testing.T) {
	r := newSelftestRig(t)
	r.cfg.Barrier.Driver = "fake"
	r.cfg.Inputs = config.Inputs{
		ExitButton: &config.Input{Pin: "GPIO5", ActiveLow: true},
		FireAlarm:  &config.Input{Pin: "GPIO13", ActiveLow: true},
		Tamper:     &config.Input{Pin: "GPIO19", ActiveLow: true},
	}
	rows, ok := Run(context.Background(), r.cfg, r.opt)
	for _, row := range rows {
		t.Logf("%-18s %-4s %s", row.Name, row.Status, row.Detail)
	}
	if !ok {
		t.Fatal("a bench unit's selftest failed")
	}
	got := rowsByName(rows)
	for _, name := range []string{"barrier relay", "input exit_button", "input fire_alarm", "input tamper"} {
		if got[name].Status != StatusPass || !strings.Contains(got[name].Detail, "simulated (barrier.driver fake)") {
			t.Errorf("%s: %s %q, want PASS saying simulated", name, got[name].Status, got[name].Detail)
		}
	}
}

// TestOutcomeStored: an outcome names its failed checks and survives a save and a load
// beside the queue; a damaged file is an error, a missing one none.
func TestOutcomeStored(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "queue.db")
	if st, err := Load(q, File); st != nil || err != nil {
		t.Fatalf("nothing stored: %+v %v", st, err)
	}
	rows := []Row{
		{Name: "platform", Result: passed("answered")},
		{Name: "barrier relay", Result: failed("barrier.pin: no such line\nGPIO17", "fix it")},
		{Name: "camera", Result: notApplicable("none")},
	}
	st := Outcome(rows, false, record.SelftestCLI)
	if st.OK || strings.Join(st.Failed, ",") != "barrier relay" || st.Source != "cli" || st.Version == "" ||
		!strings.Contains(st.Detail, "barrier relay: barrier.pin: no such line GPIO17") {
		t.Errorf("outcome %+v", st)
	}
	if _, err := time.Parse(time.RFC3339, st.At); err != nil {
		t.Errorf("at %q: %v", st.At, err)
	}
	if err := Save(q, File, st); err != nil {
		t.Fatal(err)
	}
	back, err := Load(q, File)
	if err != nil || back == nil || back.At != st.At || strings.Join(back.Failed, ",") != "barrier relay" {
		t.Fatalf("loaded %+v %v", back, err)
	}
	if err := os.WriteFile(filepath.Join(dir, DockingFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := Load(q, DockingFile); st != nil || err == nil {
		t.Errorf("a damaged file: %+v %v", st, err)
	}
}
