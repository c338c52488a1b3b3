package e2e_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/mqtttest"
	"github.com/sentinel-edge/sentinel/sim/platform"
)

// verifyWorld is one agent against the reference platform run as a process with signing,
// a fault file and a request log.
type verifyWorld struct {
	bins, dir, apiAddr, port string
	scan                     io.Writer
	faults, reqLog, secret   string
	cfgPath                  string
}

func newVerifyWorld(t *testing.T, apiArgs ...string) *verifyWorld {
	t.Helper()
	w := &verifyWorld{bins: binDir(t), dir: t.TempDir()}
	sim := filepath.Join(w.bins, "sentinel-sim")
	pop := filepath.Join(w.dir, "population.csv")
	if out, err := exec.Command(sim, "population", "--out", pop).CombinedOutput(); err != nil {
		t.Fatalf("population: %v\n%s", err, out)
	}
	w.faults, w.reqLog, w.secret = filepath.Join(w.dir, "faults"), filepath.Join(w.dir, "requests.jsonl"), filepath.Join(w.dir, "secret")
	w.setFaults(t, "ok")
	if err := os.WriteFile(w.secret, []byte("a-long-shared-secret-for-the-test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"api", "--listen", "127.0.0.1:0", "--population", pop, "--app-key", "unit-7",
		"--secret-file", w.secret, "--fault-file", w.faults, "--request-log", w.reqLog}, apiArgs...)
	api := start(t, nil, sim, args...)
	w.apiAddr = regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`).FindStringSubmatch(api.waitFor(t, regexp.MustCompile(`listening on`), 10*time.Second))[1]
	w.port = filepath.Join(w.dir, "ttyQR")
	stdinR, stdinW := io.Pipe()
	w.scan = stdinW
	start(t, stdinR, sim, "scan", "--port", w.port, "--tokens", "-", "--rate", "0", "--eol", "crlf").
		waitFor(t, regexp.MustCompile(`port ready`), 10*time.Second)
	t.Cleanup(func() { stdinW.Close() })
	return w
}

func (w *verifyWorld) setFaults(t *testing.T, lines ...string) {
	t.Helper()
	if err := os.WriteFile(w.faults, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (w *verifyWorld) startAgent(t *testing.T, cfg string) *proc {
	t.Helper()
	w.cfgPath = filepath.Join(w.dir, "sentinel.yaml")
	if err := os.WriteFile(w.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(w.bins, "sentinel"), "check", "--config", w.cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	ag := start(t, nil, filepath.Join(w.bins, "sentinel"), "run", "--config", w.cfgPath)
	ag.waitFor(t, regexp.MustCompile(`msg="pipeline up"`), 15*time.Second)
	return ag
}

func (w *verifyWorld) requests(t *testing.T) []platform.LogEntry {
	t.Helper()
	f, err := os.Open(w.reqLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var es []platform.LogEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e platform.LogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("request log line is not JSON: %v", err)
		}
		es = append(es, e)
	}
	return es
}

func decodeAll[T any](t *testing.T, msgs []mqtttest.Message) []T {
	t.Helper()
	out := make([]T, 0, len(msgs))
	for i, m := range msgs {
		if idNumber.Match(m.Payload) || strings.Contains(string(m.Payload), "HC-") {
			t.Errorf("message %d on %s carries a credential", i, m.Topic)
		}
		var v T
		if err := json.Unmarshal(m.Payload, &v); err != nil {
			t.Fatalf("message %d on %s is not JSON: %v", i, m.Topic, err)
		}
		out = append(out, v)
	}
	return out
}

func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestE2EVerifyFaultsAuditAlert runs the built binaries: the platform with signature checks,
// a fault file and a request log; the agent signing with SM3-HMAC under allow_and_flag. Each
// fault kind is injected in turn; every passage gets the right verdict; every request the
// platform saw is one audit row upstream; a flagged passage that fails its re-check becomes
// an alert; `sentinel report calls` finds no gap.
func TestE2EVerifyFaultsAuditAlert(t *testing.T) {
	broker := mqtttest.Start(t)
	w := newVerifyWorld(t)
	const venue, device = "350582-0001", "e2e-verify-01"
	cfg := fmt.Sprintf(`device: {id: %s, venue: "%s", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: %s}
platform:
  url: "http://%s"
  timeout: 300ms
  budget: 500ms
  offline_policy: allow_and_flag
  probe_interval: 300ms
  signing: sm3-hmac
  app_key: unit-7
  secret_file: %s
policy: {health_codes: [green], nat_max_age: 72h, version: "e2e-1"}
barrier: {driver: fake, pulse: 100ms}
queue: {path: %s}
uplink: {brokers: ["%s"]}
`+opsOff, device, venue, w.port, w.apiAddr, w.secret, filepath.Join(w.dir, "queue.db"), broker.URL())
	prefix := "sentinel/v1/" + venue + "/" + device + "/"
	passSub, auditSub, alertSub := broker.Subscribe(t, prefix+"passage"), broker.Subscribe(t, prefix+"audit"), broker.Subscribe(t, prefix+"alert")
	ag := w.startAgent(t, cfg)

	type want struct {
		verdict, reason, mode, fallback string
		flagged                         bool
		calls                           int // audit rows of the passage (not counting re-checks)
	}
	// Adjacent scans differ: the scanner drops a repeat of the scan before it.
	steps := []struct {
		faults []string
		token  string
		want   want
	}{
		{[]string{"ok"}, "HC-GREEN-FRESH", want{"pass", "ok", "online", "", false, 1}},
		{[]string{"latency 50ms"}, "HC-YELLOW", want{"deny", "health_code_yellow", "online", "", false, 1}},
		{[]string{"5xx", "ok"}, "HC-GREEN-FRESH", want{"pass", "ok", "online", "", false, 2}},
		{[]string{"malformed"}, "HC-YELLOW", want{"deny", "bad_response", "online", "", false, 1}},
		{[]string{"bad_signature"}, "HC-GREEN-FRESH", want{"deny", "signature_rejected", "online", "", false, 1}},
		{[]string{"ok"}, "HC BAD SCAN", want{"deny", "malformed_scan", "online", "", false, 0}},
		{[]string{"drop"}, "HC-GREEN-FRESH", want{"pass", "offline_flagged", "offline", "allow_and_flag", true, 2}},
		{[]string{"hang"}, "HC-RED", want{"pass", "offline_flagged", "offline", "allow_and_flag", true, -1}}, // -1: 0 or 1 (the breaker may be open)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range w.requests(t) {
				t.Logf("platform request: %+v", e)
			}
		}
	})
	for i, s := range steps {
		w.setFaults(t, s.faults...)
		if _, err := fmt.Fprintln(w.scan, s.token); err != nil {
			t.Fatal(err)
		}
		l := ag.waitFor(t, regexp.MustCompile(`msg=passage `), 10*time.Second)
		m := regexp.MustCompile(`decision_ms=(\d+)`).FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("step %d: no decision_ms in %q", i, l)
		}
		// The decision is bounded by platform.budget (500ms); the margin is generous.
		if ms, _ := strconv.Atoi(m[1]); ms > 500+1000 {
			t.Errorf("step %d (%s): decision took %dms, budget 500ms", i, s.faults[0], ms)
		}
	}
	// The platform comes back: the flagged red passage fails its re-check → one alert.
	w.setFaults(t, "ok")
	alerts := alertSub.WaitN(1, 15*time.Second)
	if len(alerts) != 1 {
		t.Fatalf("%d alerts, want 1 (recheck_failed):\n%s", len(alerts), ag.output())
	}
	// Wait until the green flagged passage's re-check is audited too, then stop cleanly.
	waitUntil(t, "re-checks done", 10*time.Second, func() bool {
		return strings.Contains(ag.output(), `msg="flagged passage re-verified"`)
	})
	recs := decodeAll[record.Passage](t, passSub.WaitN(len(steps), 10*time.Second))
	if len(recs) != len(steps) {
		t.Fatalf("%d passage records, want %d", len(recs), len(steps))
	}
	for i, s := range steps {
		r := recs[i]
		if r.Verdict != s.want.verdict || r.Reason != s.want.reason || r.Mode != s.want.mode || r.Fallback != s.want.fallback || r.Flagged != s.want.flagged {
			t.Errorf("step %d (%s, %s): record %s/%s/%s fallback=%q flagged=%v, want %+v", i, s.faults[0], population(s.token), r.Verdict, r.Reason, r.Mode, r.Fallback, r.Flagged, s.want)
		}
	}
	al := decodeAll[record.Alert](t, alerts)[0]
	if al.Kind != record.AlertRecheckFailed || al.Passage != recs[len(recs)-1].ID || al.Reason != "health_code_red" || al.Subject.ID == "" {
		t.Errorf("alert %+v, want recheck_failed for the red passage", al)
	}
	ag.stop(t)

	// 100% of calls audited: every verification request the platform logged is one audit
	// row, matched by passage and platform request id; and no audit row without a request.
	reqs := w.requests(t)
	audits := decodeAll[record.AuditRow](t, auditSub.WaitN(len(reqs), 10*time.Second))
	var verifs []platform.LogEntry
	pings := 0
	for _, e := range reqs {
		if e.Interface != platform.IfacePing {
			verifs = append(verifs, e)
		} else {
			pings++
		}
	}
	if len(audits) != len(reqs) {
		t.Errorf("platform saw %d requests, the audit has %d rows", len(reqs), len(audits))
	}
	type key struct{ passage, rid string }
	left := map[key]int{}
	for _, a := range audits {
		if a.Purpose == record.PurposePing {
			pings--
			continue
		}
		left[key{a.Passage, a.PlatformRequestID}]++
		if a.Device != device || a.Interface != "qr" || a.Signature == "" || a.Result == "" || a.Source == "" || a.Attempt < 1 {
			t.Errorf("audit row %+v lacks fields", a)
		}
	}
	for _, e := range verifs {
		k := key{e.Passage, e.RequestID}
		if left[k] == 0 {
			t.Errorf("request %s (passage %s, status %d, fault %s) has no audit row", e.RequestID, e.Passage, e.Status, e.Fault)
			continue
		}
		left[k]--
		if e.Signature != platform.SigOK {
			t.Errorf("request %s: the platform saw signature %q", e.RequestID, e.Signature)
		}
	}
	if pings != 0 {
		t.Errorf("pings: the platform's log and the audit differ by %d", pings)
	}
	perPassage := map[string]int{}
	for _, a := range audits {
		if a.Purpose == record.PurposePassage {
			perPassage[a.Passage]++
		}
	}
	for i, s := range steps {
		if n := perPassage[recs[i].ID]; s.want.calls >= 0 && n != s.want.calls || s.want.calls < 0 && n > 1 {
			t.Errorf("step %d (%s): %d audited calls, want %d", i, s.faults[0], n, s.want.calls)
		}
	}

	// Same delivery guarantees as records: nothing pending after a clean stop.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(w.dir, "queue.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pending int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending != 0 {
		t.Errorf("%d outbox rows pending after a clean stop", pending)
	}

	// The self-check.
	out, err := exec.Command(filepath.Join(w.bins, "sentinel"), "report", "calls", "--config", w.cfgPath, "--since", "1h").CombinedOutput()
	if err != nil {
		t.Fatalf("report calls: %v\n%s", err, out)
	}
	for _, s := range []string{"Calls per interface per day", fmt.Sprintf("Calls: %d", len(audits)), "Calls without a passage: 0", "Passages decided online without a call: 0", "Self-check: ok"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("report lacks %q:\n%s", s, out)
		}
	}
	if idNumber.Match(out) || idNumber.MatchString(ag.output()) {
		t.Error("report or agent log carries an unmasked ID number")
	}
}

// opsOff turns off the listeners of the operations parts, so that agents of parallel tests
// do not compete for their default ports.
const opsOff = "metrics: {listen: \"off\"}\nscreen: {listen: \"off\"}\n"

// population masks a token for messages.
func population(tok string) string { return fmt.Sprintf("tok(%d)", len(tok)) }

// TestE2EProvinceMapping: the agent adapts to the province gateway by configuration alone
// (configs/mappings/province-gateway.yaml), signing with HMAC-SHA256.
func TestE2EProvinceMapping(t *testing.T) {
	broker := mqtttest.Start(t)
	w := newVerifyWorld(t, "--dialect", "province")
	mapping, err := filepath.Abs("../configs/mappings/province-gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const venue, device = "350582-0002", "e2e-province"
	cfg := fmt.Sprintf(`device: {id: %s, venue: "%s", style: reduced_gate}
scanners: {qr: {driver: serial, port: %s}}
platform: {url: "http://%s", mapping: %s, signing: hmac-sha256, app_key: unit-7, secret_file: %s}
queue: {path: %s}
uplink: {brokers: ["%s"]}
`+opsOff, device, venue, w.port, w.apiAddr, mapping, w.secret, filepath.Join(w.dir, "queue.db"), broker.URL())
	sub := broker.Subscribe(t, "sentinel/v1/"+venue+"/"+device+"/passage")
	ag := w.startAgent(t, cfg)
	cases := []struct{ token, verdict, reason string }{
		{"HC-GREEN-FRESH", "pass", "ok"},
		{"HC-YELLOW", "deny", "health_code_yellow"},
		{"HC-GREEN-OLD", "deny", "nat_expired"},
		{"HC-GREEN-NONAT", "deny", "nat_missing"},
		{"HC-GREEN-POS", "deny", "nat_positive"},
		{"HC-UNKNOWN-0001", "deny", "unknown_credential"},
	}
	for _, c := range cases {
		fmt.Fprintln(w.scan, c.token)
		ag.waitFor(t, regexp.MustCompile(`msg=passage `), 10*time.Second)
	}
	recs := decodeAll[record.Passage](t, sub.WaitN(len(cases), 10*time.Second))
	if len(recs) != len(cases) {
		t.Fatalf("%d records for %d scans", len(recs), len(cases))
	}
	for i, c := range cases {
		if recs[i].Verdict != c.verdict || recs[i].Reason != c.reason {
			t.Errorf("%s: %s/%s, want %s/%s", population(c.token), recs[i].Verdict, recs[i].Reason, c.verdict, c.reason)
		}
	}
	for _, e := range w.requests(t) {
		if e.Interface == platform.IfacePing {
			continue // pings are not signed-checked by the simulator
		}
		if !strings.HasPrefix(e.Path, "/gateway/health/") || e.Signature != platform.SigOK || e.Device != device {
			t.Errorf("request %s %s signature %s device %q", e.Method, e.Path, e.Signature, e.Device)
		}
	}
}
