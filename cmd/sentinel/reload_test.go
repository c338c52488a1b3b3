package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent"
	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/ops"
	"github.com/sentinel-edge/sentinel/agent/record"
)

// toolUnit writes a unit's config in a new directory and returns its path and config.
func toolUnit(t *testing.T) (string, *config.Config) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "sentinel.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(`device: {id: gate-01, venue: "350582-0001", style: gate_all_in_one}
scanners: {qr: {driver: serial, port: /dev/null}}
platform: {url: "http://127.0.0.1:1"}
barrier: {driver: fake}
queue: {path: %s}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
`, filepath.Join(dir, "queue.db"))), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

// TestPidFile: the pid file finds a running daemon, and a stale one (the daemon died, its
// pid reused by another process) is not trusted.
func TestPidFile(t *testing.T) {
	path, cfg := toolUnit(t)
	if d := findDaemon(cfg); d.running || !strings.Contains(d.why, "no pid file") {
		t.Errorf("no pid file: %+v", d)
	}
	p := pidFile{path: pidPath(cfg), config: path}
	if err := p.write(); err != nil {
		t.Fatal(err)
	}
	if d := findDaemon(cfg); !d.running || d.pid != os.Getpid() || d.config == "" {
		t.Errorf("this process: %+v", d)
	}
	// The same pid, another start time: a process that reused the pid.
	b, _ := os.ReadFile(pidPath(cfg))
	var rec pidRecord
	_ = json.Unmarshal(b, &rec)
	rec.Start = "1"
	b, _ = json.Marshal(rec)
	if err := os.WriteFile(pidPath(cfg), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if d := findDaemon(cfg); d.running || !strings.Contains(d.why, "not that daemon any more") {
		t.Errorf("stale pid file: %+v", d)
	}
	p.remove() // not ours any more: left
	if _, err := os.Stat(pidPath(cfg)); err != nil {
		t.Errorf("remove took another process's pid file: %v", err)
	}
	if err := p.write(); err != nil {
		t.Fatal(err)
	}
	p.remove()
	if _, err := os.Stat(pidPath(cfg)); !os.IsNotExist(err) {
		t.Errorf("own pid file left: %v", err)
	}
}

// TestReloadCommandLine: sentinel reload checks the file, signals the daemon its pid file
// names and prints the daemon's outcome; no daemon, an invalid file and a refusal each say
// so with their exit code.
func TestReloadCommandLine(t *testing.T) {
	path, cfg := toolUnit(t)
	var out, errb bytes.Buffer
	if code := cmdReload([]string{"--config", path}, &out, &errb); code != exitFailure || !strings.Contains(errb.String(), "not running") {
		t.Errorf("no daemon: exit %d %s", code, errb.String())
	}
	bad := filepath.Join(filepath.Dir(path), "bad.yaml")
	_ = os.WriteFile(bad, []byte("device: {id: 1\n"), 0o600)
	errb.Reset()
	if code := cmdReload([]string{"--config", bad}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "not signalled") {
		t.Errorf("invalid file: exit %d %s", code, errb.String())
	}

	p := pidFile{path: pidPath(cfg), config: path}
	if err := p.write(); err != nil {
		t.Fatal(err)
	}
	defer p.remove()
	outcome := agent.ReloadOutcome{By: "SIGHUP", OK: true, Applied: []string{"policy.health_codes"}, Restart: []string{"barrier.pin"}}
	var got []syscall.Signal
	old := sendSignal
	sendSignal = func(pid int, sig syscall.Signal) error {
		if pid != os.Getpid() {
			t.Errorf("signalled pid %d", pid)
		}
		got = append(got, sig)
		outcome.At = record.TS(time.Now())
		b, _ := json.Marshal(outcome)
		return os.WriteFile(filepath.Join(filepath.Dir(path), agent.ReloadFile), b, 0o600)
	}
	t.Cleanup(func() { sendSignal = old })
	out.Reset()
	if code := cmdReload([]string{"--config", path}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "in force now:   policy.health_codes") ||
		!strings.Contains(out.String(), "needs restart:  barrier.pin") || len(got) != 1 || got[0] != syscall.SIGHUP {
		t.Errorf("reload: exit %d\n%s\n%s (signals %v)", code, out.String(), errb.String(), got)
	}
	outcome.OK, outcome.Problems = false, []string{"line 3: policy.health_codes[0]: must be one of green, yellow, red"}
	errb.Reset()
	if code := cmdReload([]string{"--config", path}, &out, &errb); code != exitFailure || !strings.Contains(errb.String(), "refused") || !strings.Contains(errb.String(), "line 3") {
		t.Errorf("refused: exit %d %s", code, errb.String())
	}
}

// TestStatusWithoutDaemon: sentinel status says the daemon does not run, exit 1, and shows
// the last status it wrote.
func TestStatusWithoutDaemon(t *testing.T) {
	path, cfg := toolUnit(t)
	s := record.Status{TS: record.TS(time.Now()), Device: "gate-01", Mode: "locked", Platform: "offline", FireAlarm: "normal",
		Docking: &record.DockingState{Why: []string{"the platform has not answered since the unit started"}}}
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfg.Queue.Path), ops.StatusFile), b, 0o640); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := cmdStatus([]string{"--config", path}, &out, &errb); code != exitFailure || !strings.Contains(errb.String(), "not running") ||
		!strings.Contains(out.String(), "last known") || !strings.Contains(out.String(), "locked") || !strings.Contains(out.String(), "has not answered") {
		t.Errorf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	out.Reset()
	var v statusView
	if code := cmdStatus([]string{"--config", path, "--json"}, &out, &errb); code != exitFailure || json.Unmarshal(out.Bytes(), &v) != nil ||
		v.Daemon.Running || v.Status == nil || v.Status.Mode != "locked" || v.Queue != nil || v.QueueError == "" {
		t.Errorf("--json: exit %d %s", code, out.String())
	}
}

func TestPassagesUsage(t *testing.T) {
	path, _ := toolUnit(t)
	for _, args := range [][]string{{"--config", path, "--last", "0"}, {"--config", path, "--last", "10001"}, {}} {
		var out, errb bytes.Buffer
		if code := cmdPassages(args, &out, &errb); code != exitUsage {
			t.Errorf("%q: exit %d %s", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := cmdPassages([]string{"--config", path}, &out, &errb); code != exitFailure || !strings.Contains(errb.String(), "queue.path") {
		t.Errorf("no outbox yet: exit %d %s", code, errb.String())
	}
}

// An outcome with only a pending restart does not also say "nothing changed" (probeC
// finding 1); one with neither does.
func TestPrintReloadPendingRestart(t *testing.T) {
	for _, tt := range []struct {
		name      string
		out       agent.ReloadOutcome
		want, not string
	}{
		{name: "restart only", out: agent.ReloadOutcome{OK: true, Restart: []string{"camera.url"}}, want: "needs restart:  camera.url", not: "nothing changed"},
		{name: "nothing", out: agent.ReloadOutcome{OK: true}, want: "nothing changed", not: "restart"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := printReload(&out, &errb, 1, tt.out); code != exitOK || !strings.Contains(out.String(), tt.want) || strings.Contains(out.String(), tt.not) {
				t.Errorf("exit %d, want %q and not %q:\n%s", code, tt.want, tt.not, out.String())
			}
		})
	}
}

// A --wait that is not positive is a usage error, found before the daemon is signalled
// (probeC finding 2).
func TestReloadWaitNotPositive(t *testing.T) {
	path := runningUnit(t)
	signalled := 0
	old := sendSignal
	sendSignal = func(int, syscall.Signal) error { signalled++; return nil }
	t.Cleanup(func() { sendSignal = old })
	for _, w := range []string{"0s", "-1s"} {
		var out, errb bytes.Buffer
		if code := cmdReload([]string{"--config", path, "--wait", w}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "--wait") {
			t.Errorf("--wait %s: exit %d %s", w, code, errb.String())
		}
	}
	if signalled != 0 {
		t.Errorf("the daemon was signalled %d times for a --wait that is not positive", signalled)
	}
}

// TestStatusDamagedOrAhead (probeC finding 5): a status file that is not JSON is called
// damaged, not a permissions problem; a ts ahead of the clock is flagged, not "0s ago".
func TestStatusDamagedOrAhead(t *testing.T) {
	path, cfg := toolUnit(t)
	file := filepath.Join(filepath.Dir(cfg.Queue.Path), ops.StatusFile)
	if err := os.WriteFile(file, []byte(`{"online":tr`), 0o640); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	cmdStatus([]string{"--config", path}, &out, &errb)
	if s := out.String(); !strings.Contains(s, "damaged") || !strings.Contains(s, "try again") || strings.Contains(s, "run as root") {
		t.Errorf("damaged status file:\n%s", s)
	}
	b, _ := json.Marshal(record.Status{TS: "2030-01-01T00:00:00.000Z", Mode: "normal"})
	if err := os.WriteFile(file, b, 0o640); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	cmdStatus([]string{"--config", path}, &out, &errb)
	if s := out.String(); !strings.Contains(s, "AHEAD of this machine's clock") {
		t.Errorf("a ts in 2030:\n%s", s)
	}
	out.Reset()
	var v statusView
	if cmdStatus([]string{"--config", path, "--json"}, &out, &errb); json.Unmarshal(out.Bytes(), &v) != nil || v.TSAhead <= 0 {
		t.Errorf("--json: %s", out.String())
	}
	b, _ = json.Marshal(record.Status{TS: record.TS(time.Now()), Mode: "normal"})
	if err := os.WriteFile(file, b, 0o640); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if cmdStatus([]string{"--config", path}, &out, &errb); strings.Contains(out.String(), "AHEAD") {
		t.Errorf("a ts of now flagged:\n%s", out.String())
	}
}

// TestStatusPendingRestart: sentinel status lists the keys the last reload since the
// daemon started said need a restart; a reload from before the start names nothing.
func TestStatusPendingRestart(t *testing.T) {
	path := runningUnit(t)
	for _, tt := range []struct {
		name string
		at   time.Time
		want bool
	}{
		{"since the start", time.Now().Add(time.Second), true},
		{"before the start", time.Now().Add(-time.Hour), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(agent.ReloadOutcome{At: record.TS(tt.at), By: "SIGHUP", OK: true, Restart: []string{"camera.url"}})
			if err := os.WriteFile(filepath.Join(filepath.Dir(path), agent.ReloadFile), b, 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			cmdStatus([]string{"--config", path}, &out, &errb)
			if got := strings.Contains(out.String(), "restart needed for: camera.url"); got != tt.want {
				t.Errorf("pending restart shown %v, want %v:\n%s", got, tt.want, out.String())
			}
		})
	}
}

// runningUnit is toolUnit with this process as its daemon (its pid file written).
func runningUnit(t *testing.T) string {
	t.Helper()
	path, cfg := toolUnit(t)
	p := pidFile{path: pidPath(cfg), config: path}
	if err := p.write(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.remove)
	return path
}
