package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/sim/population"
	"github.com/sentinel-edge/sentinel/verify"
)

func TestReportCallsUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "s.yaml")
	body := `device: {id: g1, venue: v1, style: reduced_gate}
scanners: {qr: {driver: serial, port: /dev/ttyS1}}
platform: {url: "http://127.0.0.1:1"}
queue: {path: ` + filepath.Join(dir, "q.db") + `}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no config", []string{"report", "calls"}, exitUsage, "--config FILE is required"},
		{"bad since", []string{"report", "calls", "--config", cfg, "--since", "yesterday"}, exitUsage, "--since"},
		{"until before since", []string{"report", "calls", "--config", cfg, "--since", "2026-11-25", "--until", "2026-11-24"}, exitUsage, "must be before"},
		{"no queue yet", []string{"report", "calls", "--config", cfg}, exitFailure, "q.db"},
		{"help", []string{"report", "calls", "--help"}, exitOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tt.args, &out, &errb); code != tt.code || !strings.Contains(errb.String(), tt.err) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errb.String(), tt.code, tt.err)
			}
		})
	}
}

func TestParseReportTime(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]time.Time{
		"2026-11-25T00:00:00Z": time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC),
		"24h":                  now.Add(-24 * time.Hour),
		"2026-11-20":           time.Date(2026, 11, 20, 0, 0, 0, 0, shanghai),
	} {
		if got, err := parseReportTime(in, now, shanghai); err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1h", "soon"} {
		if _, err := parseReportTime(in, now, shanghai); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// Issue #14, finding 8: report calls labelled its days' zone "Local". The zone is named: by
// --tz, else the machine's name for it, else its offset.
func TestReportCallsZoneNamed(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "queue.db")
	o, err := queue.Open(db, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	cfg := queueConfigFile(t, db)
	report := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(append([]string{"report", "calls", "--config", cfg}, args...), &out, &errb); code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		return out.String()
	}
	if s := report("--tz", "Asia/Shanghai", "--since", "2026-11-25", "--until", "2026-11-26"); !strings.Contains(s, "(days in Asia/Shanghai)") ||
		!strings.Contains(s, "2026-11-25T00:00:00+08:00 to 2026-11-26T00:00:00+08:00") {
		t.Errorf("--tz Asia/Shanghai: %s", s)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"report", "calls", "--config", cfg, "--tz", "Mars/Olympus"}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "--tz") {
		t.Errorf("an unknown zone: exit %d: %s", code, errb.String())
	}

	// The machine's zone, when TZ is not set: the name /etc/localtime links to.
	lt, tzf := localtimePath, timezonePath
	t.Cleanup(func() { localtimePath, timezonePath = lt, tzf })
	t.Setenv("TZ", "") // restored after the test
	os.Unsetenv("TZ")  // unset, not empty (empty is UTC)
	localtimePath, timezonePath = filepath.Join(dir, "localtime"), filepath.Join(dir, "timezone")
	if err := os.Symlink("/usr/share/zoneinfo/Asia/Shanghai", localtimePath); err != nil {
		t.Fatal(err)
	}
	if s := report(); !strings.Contains(s, "(days in Asia/Shanghai)") {
		t.Errorf("the machine's zone by /etc/localtime: %s", s)
	}
	os.Remove(localtimePath)
	if s := report(); !regexp.MustCompile(`\(days in UTC[+-]\d\d:\d\d\)`).MatchString(s) {
		t.Errorf("a zone without a name is named by its offset: %s", s)
	}
	t.Setenv("TZ", "Europe/Berlin")
	if s := report(); !strings.Contains(s, "(days in Europe/Berlin)") {
		t.Errorf("TZ: %s", s)
	}
}

// Finding: try and docking-check calls (purpose commissioning) have no passage by design, yet
// the self-check listed them as calls without a passage and counted them as problems; and a
// self-check with problems exited 0.
func TestReportCallsFindingCommissioning(t *testing.T) {
	u := newUnit(t, unitOpts{})
	if code, _, _ := runCmd("try", "--config", u.cfg, "--qr", population.TokenGreenFresh); code != exitOK {
		t.Fatalf("try: exit %d", code)
	}
	code, out, errb := runCmd("report", "calls", "--config", u.cfg)
	if code != exitOK || !strings.Contains(out, "Calls without a passage: 0\n") || !strings.Contains(out, "Commissioning calls (try, docking-check; no passage by design): 1\n") || !strings.Contains(out, "Self-check: ok") {
		t.Errorf("a commissioning call: exit %d\n%s%s", code, out, errb)
	}
	code, out, _ = runCmd("report", "calls", "--config", u.cfg, "--json")
	var r struct {
		Without       []string `json:"calls_without_passage"`
		Commissioning []string `json:"commissioning_calls"`
		Problems      []string `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != exitOK || len(r.Without) != 0 || len(r.Commissioning) != 1 || len(r.Problems) != 0 {
		t.Errorf("--json: exit %d, %+v (%v)", code, r, err)
	}

	// A passage's call that names no passage is a problem: exit 1.
	ob, err := queue.Open(u.queuePath, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ob.Append(context.Background(), record.StreamAudit, "t", func(int64, string) ([]byte, error) {
		return json.Marshal(record.AuditRow{TS: time.Now().UTC().Format(time.RFC3339), Interface: "qr", Purpose: record.PurposePassage, Attempt: 1, Result: verify.ResultOK})
	})
	ob.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCmd("report", "calls", "--config", u.cfg)
	if code != exitFailure || !strings.Contains(out, "Calls without a passage: 1\n") || !strings.Contains(out, "Self-check: 1 problem(s)") {
		t.Errorf("a passage call without a passage: exit %d, want 1\n%s", code, out)
	}
	if code, _, _ = runCmd("report", "calls", "--config", u.cfg, "--json"); code != exitFailure {
		t.Errorf("--json with a problem: exit %d, want 1", code)
	}
}
