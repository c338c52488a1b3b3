package e2e_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/mqtttest"
	"github.com/sentinel-edge/sentinel/queue"
)

// TestE2EFlaggedPassageSurvivesKill: under allow_and_flag a passage admitted while the
// platform hangs is flagged and its re-check waits in memory. The agent is killed with
// SIGKILL before the platform returns; the next start finds the flagged passage in the
// outbox without a re-check outcome and publishes a recheck_abandoned alert for it (reason
// daemon_restarted). A clean stop and a third start raise no second alert.
func TestE2EFlaggedPassageSurvivesKill(t *testing.T) {
	broker := mqtttest.Start(t)
	w := newVerifyWorld(t)
	const venue, device = "350582-0001", "e2e-kill-01"
	cfg := fmt.Sprintf(`device: {id: %s, venue: "%s", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: %s}
platform:
  url: "http://%s"
  timeout: 200ms
  budget: 300ms
  offline_policy: allow_and_flag
  probe_interval: 10m
  signing: hmac-sha256
  app_key: unit-7
  secret_file: %s
policy: {health_codes: [green], nat_max_age: 72h}
barrier: {driver: fake, pulse: 100ms}
queue: {path: %s}
uplink: {brokers: ["%s"]}
`+opsOff, device, venue, w.port, w.apiAddr, w.secret, filepath.Join(w.dir, "queue.db"), broker.URL())
	alerts := broker.Subscribe(t, "sentinel/v1/"+venue+"/"+device+"/alert")

	w.setFaults(t, "hang")
	ag := w.startAgent(t, cfg)
	if _, err := fmt.Fprintln(w.scan, "HC-RED"); err != nil {
		t.Fatal(err)
	}
	line := ag.waitFor(t, regexp.MustCompile(`msg=passage .*reason=offline_flagged`), 10*time.Second)
	passage := regexp.MustCompile(`passage=([0-9a-f-]{36})`).FindStringSubmatch(line)
	if passage == nil {
		t.Fatalf("no passage id in %q", line)
	}
	// The record is committed before the log line; the re-check waits in memory only.
	if err := ag.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-ag.done
	if n := len(alerts.Messages()); n != 0 {
		t.Fatalf("%d alerts before the restart", n)
	}

	ag = w.startAgent(t, cfg)
	msgs := alerts.WaitN(1, 15*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("%d alerts after the restart, want 1 recheck_abandoned:\n%s", len(msgs), ag.output())
	}
	a := decodeAll[record.Alert](t, msgs)[0]
	if a.Kind != record.AlertRecheckAbandoned || a.Passage != passage[1] || a.Reason != record.ReasonDaemonRestarted || a.Credential != "qr" || a.PassageTS == "" || a.Policy == "" {
		t.Errorf("alert %+v, want recheck_abandoned daemon_restarted for passage %s", a, passage[1])
	}
	ag.stop(t)

	ag = w.startAgent(t, cfg)
	ag.stop(t)
	// The outbox holds every alert ever stored (delivered rows are kept): still one.
	rd, err := queue.OpenReader(filepath.Join(w.dir, "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	n := 0
	if err := rd.Entries(context.Background(), func(e queue.Entry) error {
		if e.Stream == record.StreamAlert {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d alerts in the outbox after a clean stop and a third start, want still 1", n)
	}
	if idNumber.MatchString(ag.output()) {
		t.Error("the agent's log carries an unmasked ID number")
	}
}

// TestE2EDamagedRowStillAlerts (issue #11, finding 7): four passages flagged while the
// platform hangs, SIGKILL, one delivered-or-not audit row damaged on disk with the sqlite3
// command line; the next start skips and counts the damaged row and alerts the four.
func TestE2EDamagedRowStillAlerts(t *testing.T) {
	sqlite3, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("no sqlite3 command line (scripts/install-deps.sh test installs it)")
	}
	broker := mqtttest.Start(t)
	w := newVerifyWorld(t)
	const venue, device = "350582-0001", "e2e-kill-02"
	db := filepath.Join(w.dir, "queue.db")
	cfg := fmt.Sprintf(`device: {id: %s, venue: "%s", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: %s}
platform:
  url: "http://%s"
  timeout: 200ms
  budget: 300ms
  offline_policy: allow_and_flag
  probe_interval: 10m
  signing: hmac-sha256
  app_key: unit-7
  secret_file: %s
policy: {health_codes: [green], nat_max_age: 72h}
barrier: {driver: fake, pulse: 100ms}
queue: {path: %s}
uplink: {brokers: ["%s"]}
`+opsOff, device, venue, w.port, w.apiAddr, w.secret, db, broker.URL())
	alerts := broker.Subscribe(t, "sentinel/v1/"+venue+"/"+device+"/alert")
	w.setFaults(t, "hang")
	ag := w.startAgent(t, cfg)
	for range 4 {
		if _, err := fmt.Fprintln(w.scan, "HC-RED"); err != nil {
			t.Fatal(err)
		}
		ag.waitFor(t, regexp.MustCompile(`msg=passage .*reason=offline_flagged`), 10*time.Second)
	}
	time.Sleep(500 * time.Millisecond) // the audit rows are stored off the decision loop
	if err := ag.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-ag.done
	if out, err := exec.Command(sqlite3, db, `UPDATE outbox SET enc = 1, payload = x'fffefd' WHERE stream = 'audit' AND seq = 1`).CombinedOutput(); err != nil {
		t.Fatalf("damaging a row: %v\n%s", err, out)
	}
	ag = w.startAgent(t, cfg)
	msgs := alerts.WaitN(4, 15*time.Second)
	if len(msgs) != 4 {
		t.Fatalf("%d alerts after the restart with one damaged row, want 4:\n%s", len(msgs), ag.output())
	}
	for _, a := range decodeAll[record.Alert](t, msgs) {
		if a.Kind != record.AlertRecheckAbandoned || a.Reason != record.ReasonDaemonRestarted {
			t.Errorf("alert %+v", a)
		}
	}
	ag.waitOutput(t, regexp.MustCompile(`damaged outbox rows skipped .*damaged=1`), 5*time.Second)
}
