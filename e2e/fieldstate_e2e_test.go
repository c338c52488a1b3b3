package e2e_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/sys/unix"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/mqtttest"
)

// Issue #14, "Field truth": what a unit reports about itself must be true, and the on-site
// tools (status, passages, reload, report fleet over mutual TLS) must work on a unit set up
// as the field guide says.

// machineClockSynced says whether this machine's kernel calls its clock synchronised, as
// the agent's clock check does: the selftest's clock row passes only then.
func machineClockSynced() bool {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	return err == nil && tx.Status&unix.STA_UNSYNC == 0 && state != unix.TIME_ERROR && time.Now().Year() >= 2024
}

// mtlsBroker is a Mosquitto that takes only clients with a certificate of its CA.
type mtlsBroker struct {
	*mqtttest.Broker
	ca  *mqtttest.CA
	dir string
}

func startMTLS(t *testing.T) *mtlsBroker {
	t.Helper()
	dir := t.TempDir()
	ca := mqtttest.NewCA(t, dir, "city-ca")
	cert, key := ca.Issue(t, "broker")
	b := mqtttest.StartWith(t, mqtttest.Options{TLS: &mqtttest.TLSFiles{CAFile: ca.CertFile, CertFile: cert, KeyFile: key, RequireClientCert: true}})
	return &mtlsBroker{Broker: b, ca: ca, dir: dir}
}

// watch keeps the last status of every unit, read over mutual TLS with the given client
// certificate.
func (b *mtlsBroker) watch(t *testing.T, certFile, keyFile string) *statusWatch {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("status-watch-tls").SetCleanSession(true).
		SetTLSConfig(&tls.Config{RootCAs: b.ca.Pool(), Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect over mTLS: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return watchOn(t, c)
}

// fieldUnit is the config of a bench gate in the field guide's set-up: the simulator's
// scanner and platform, a fake barrier, the template's active-low inputs, and (with a tls uplinkExtra)
// a mutual-TLS uplink.
func fieldUnit(w *world, device, brokerURL, uplinkExtra, extra string) string {
	return fmt.Sprintf(`device: {id: %s, venue: "350582-0001", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: %s, baud: 9600}
platform: {url: "http://%s", timeout: 500ms, probe_interval: 500ms}
policy: {health_codes: [green], nat_max_age: 72h}
barrier: {driver: fake, pulse: 300ms}
inputs:
  exit_button: {pin: GPIO5, active_low: true}
  fire_alarm: {pin: GPIO13, active_low: true}
  tamper: {pin: GPIO19, active_low: true}
queue: {path: %s}
uplink: {brokers: ["%s"], topic_prefix: sentinel/v1%s}
screen: {listen: "off"}
metrics: {listen: "off"}
status: {heartbeat: 2s}
%s`, device, w.Port, w.APIAddr, filepath.Join(w.Dir, "queue.db"), brokerURL, uplinkExtra, extra)
}

// TestE2EFleetTruth is the lead's three units over mutual TLS: one docked, one whose
// selftest failed (the platform refuses its signature), one only provisioned (no install
// facts). The statuses and `report fleet --config` must say so, with the reason for each
// "no" (findings 1 and 2).
func TestE2EFleetTruth(t *testing.T) {
	b := startMTLS(t)
	type unit struct {
		device, cfg string
		w           *world
		ag          *proc
	}
	tlsOf := func(name string) string {
		cert, key := b.ca.Issue(t, name)
		return fmt.Sprintf(", tls: {ca_file: %s, cert_file: %s, key_file: %s}", b.ca.CertFile, cert, key)
	}
	// The failed unit's platform checks signatures; the unit signs with a secret it was not
	// issued (a wrong paste at provisioning).
	secrets := t.TempDir()
	writeSecret(t, filepath.Join(secrets, "issued"), "issued-secret-of-gate-02-000000\n")
	writeSecret(t, filepath.Join(secrets, "pasted"), "wrongly-pasted-secret-0000000000\n")
	docked := &unit{device: "gate-01", w: newWorld(t)}
	failed := &unit{device: "gate-02", w: newWorld(t, "--app-key", "AK-gate-02", "--secret-file", filepath.Join(secrets, "issued"))}
	installing := &unit{device: "gate-03", w: newWorld(t)}
	docked.cfg = fieldUnit(docked.w, docked.device, b.URL(), tlsOf(docked.device),
		"install: {unit: 福清市某某超市, location: 北门入口, brand: Acme, style_label: 闸机一体机, status: installed}\n")
	failed.cfg = fieldUnit(failed.w, failed.device, b.URL(), tlsOf(failed.device),
		"install: {unit: 福清市某某医院, location: 门诊楼, brand: Acme, style_label: 闸机一体机, status: installed}\n")
	failed.cfg = strings.Replace(failed.cfg, "probe_interval: 500ms}", fmt.Sprintf("probe_interval: 500ms, app_key: AK-gate-02, secret_file: %s}", filepath.Join(secrets, "pasted")), 1)
	installing.cfg = fieldUnit(installing.w, installing.device, b.URL(), tlsOf(installing.device), "") // only provisioned

	// The failed unit was commissioned: its selftest said NOT READY (and is stored).
	failedPath := filepath.Join(failed.w.Dir, "sentinel.yaml")
	writeSecret(t, failedPath, failed.cfg)
	if code, out := sentinel(t, failed.w.Bins, "selftest", "--config", failedPath); code != 1 || !regexp.MustCompile(`platform\s+FAIL`).MatchString(out) {
		t.Fatalf("selftest of the failed unit: exit %d, want 1 with platform FAIL:\n%s", code, out)
	}
	for _, u := range []*unit{docked, failed, installing} {
		u.ag = u.w.agent(t, u.cfg)
	}
	wcert, wkey := b.ca.Issue(t, "watcher")
	sw := b.watch(t, wcert, wkey)
	sd := sw.wait(t, docked.device, "docked with its evidence", func(s record.Status) bool {
		return s.Online && s.Docked && s.Docking != nil && s.Docking.Check != "" && s.Docking.At != "" && s.Docking.Version != ""
	})
	if sd.Progress == nil || sd.Progress.Step != 3 || sd.Platform != "online" {
		t.Errorf("docked unit: progress %+v platform %s", sd.Progress, sd.Platform)
	}
	sf := sw.wait(t, failed.device, "not docked, its failed selftest in the status", func(s record.Status) bool {
		return s.Online && s.Selftest != nil && !s.Selftest.OK && s.Selftest.At != "" && len(s.Selftest.Failed) > 0 && !s.Docked
	})
	if !contains(sf.Selftest.Failed, "platform") || sf.Progress == nil || sf.Progress.Step != 2 || sf.Docking == nil || len(sf.Docking.Why) == 0 {
		t.Errorf("failed unit: selftest %+v progress %+v docking %+v", sf.Selftest, sf.Progress, sf.Docking)
	}
	si := sw.wait(t, installing.device, "installing, not docked", func(s record.Status) bool {
		return s.Online && s.Progress != nil && s.Progress.Step == 1 && !s.Docked
	})
	if !strings.Contains(strings.Join(si.Progress.Why, "; "), "install.unit") {
		t.Errorf("installing unit: progress %+v", si.Progress)
	}

	// The report, with the unit's own uplink settings (--config), and with explicit files.
	dockedPath := filepath.Join(docked.w.Dir, "sentinel.yaml")
	code, report := sentinel(t, docked.w.Bins, "report", "fleet", "--config", dockedPath, "--format", "md")
	if code != 0 {
		t.Fatalf("report fleet --config: exit %d\n%s", code, report)
	}
	t.Logf("report fleet --config %s --format md:\n%s", dockedPath, report)
	for _, want := range []string{
		"| 1 | 福清市某某超市 | installed | 北门入口 | Acme | 闸机一体机 | 3/3 docked | yes |",
		"| 2 | 福清市某某医院 | installed | 门诊楼 | Acme | 闸机一体机 | 2/3 installed, not docked | no |",
		"| 3 |  | installing |  |  | gate_all_in_one | 1/3 installing | no |",
		"selftest", "install.unit",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	rcert, rkey := b.ca.Issue(t, "reporter")
	code, csv := sentinel(t, docked.w.Bins, "report", "fleet", "--broker", b.URL(), "--ca", b.ca.CertFile, "--cert", rcert, "--key", rkey)
	if code != 0 || strings.Count(csv, "\n") != 4 {
		t.Errorf("report fleet --ca --cert --key: exit %d\n%s", code, csv)
	}
	// Without the CA the broker cannot be trusted: a runtime failure that says what to give.
	code, out := sentinel(t, docked.w.Bins, "report", "fleet", "--broker", b.URL())
	if code != 1 || !strings.Contains(out, "--config") {
		t.Errorf("report fleet over TLS without a CA: exit %d\n%s", code, out)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestE2EPlatformProbe: with the platform killed and nobody passing, the status says
// offline within about one platform.probe_interval and the log says so at WARN; when it
// comes back, INFO and online (finding 3).
func TestE2EPlatformProbe(t *testing.T) {
	broker := mqtttest.Start(t)
	sw := watchStatuses(t, broker)
	w := newWorld(t)
	port := freePort(t)
	pop := filepath.Join(w.Dir, "population.csv")
	api := start(t, nil, filepath.Join(w.Bins, "sentinel-sim"), "api", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--population", pop)
	api.waitFor(t, regexp.MustCompile(`listening on`), 10*time.Second)
	const probe = 500 * time.Millisecond
	w.APIAddr = fmt.Sprintf("127.0.0.1:%d", port)
	cfg := strings.Replace(fieldUnit(w, "probe-01", broker.URL(), "", ""), "status: {heartbeat: 2s}", "status: {heartbeat: 60s}", 1)
	ag := w.agent(t, cfg)
	sw.wait(t, "probe-01", "platform online", func(s record.Status) bool { return s.Online && s.Platform == "online" })

	_ = api.cmd.Process.Signal(syscall.SIGKILL)
	<-api.done
	killed := time.Now()
	s := sw.wait(t, "probe-01", "platform offline", func(s record.Status) bool { return s.Platform == "offline" })
	took := time.Since(killed)
	t.Logf("the status said offline %s after the platform died (platform.probe_interval %s)", took.Round(time.Millisecond), probe)
	// One probe interval, the call's timeout (refused at once here) and the status' one-second
	// publication pace: 5s is a generous margin; the heartbeat (60s) would be far beyond.
	if took > probe+5*time.Second {
		t.Errorf("status said offline %s after the platform died, want about %s", took, probe)
	}
	if s.PlatformSince == "" {
		t.Errorf("status lacks platform_since: %+v", s)
	}
	ag.waitOutput(t, regexp.MustCompile(`level=WARN msg="platform unreachable`), 5*time.Second)

	api = start(t, nil, filepath.Join(w.Bins, "sentinel-sim"), "api", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--population", pop)
	api.waitFor(t, regexp.MustCompile(`listening on`), 10*time.Second)
	sw.wait(t, "probe-01", "platform online again", func(s record.Status) bool { return s.Platform == "online" })
	ag.waitOutput(t, regexp.MustCompile(`level=INFO msg="platform reachable again`), 5*time.Second)
}

// TestE2EReload: SIGHUP re-reads the config: the policy and the install facts change live,
// a change that needs a restart is named, an invalid file is refused and the unit keeps
// running; `sentinel reload` does the same and says when no daemon runs (finding 4).
func TestE2EReload(t *testing.T) {
	broker := mqtttest.Start(t)
	sw := watchStatuses(t, broker)
	w := newWorld(t)
	path := filepath.Join(w.Dir, "sentinel.yaml")
	cfg := fieldUnit(w, "reload-01", broker.URL(), "", "install: {unit: 某超市, location: 北门, brand: Acme, status: installed}\n")
	ag := w.agent(t, cfg)
	fmt.Fprintln(w.Scan, "HC-YELLOW")
	ag.waitFor(t, regexp.MustCompile(`msg=passage .*reason=health_code_yellow`), 10*time.Second)

	next := strings.NewReplacer("health_codes: [green]", "health_codes: [green, yellow]", "location: 北门", "location: 南门",
		"pulse: 300ms", "pulse: 400ms").Replace(cfg)
	writeSecret(t, path, next)
	_ = ag.cmd.Process.Signal(syscall.SIGHUP)
	l := ag.waitFor(t, regexp.MustCompile(`msg="config reloaded"`), 10*time.Second)
	if !strings.Contains(l, "policy.health_codes") || !strings.Contains(l, "install.location") {
		t.Errorf("reload line does not name what changed: %s", l)
	}
	ag.waitOutput(t, regexp.MustCompile(`need a restart.*barrier\.pulse`), 5*time.Second)
	sw.wait(t, "reload-01", "the new location", func(s record.Status) bool { return s.Location == "南门" })
	fmt.Fprintln(w.Scan, "HC-YELLOW")
	ag.waitFor(t, regexp.MustCompile(`msg=passage .*verdict=pass`), 10*time.Second)

	// An invalid file: refused with its errors, the unit keeps the last good config.
	writeSecret(t, path, strings.Replace(next, "health_codes: [green, yellow]", "health_codes: [purple]", 1))
	_ = ag.cmd.Process.Signal(syscall.SIGHUP)
	ag.waitFor(t, regexp.MustCompile(`level=ERROR msg="config reload refused.*policy\.health_codes`), 10*time.Second)
	fmt.Fprintln(w.Scan, "HC-YELLOW")
	ag.waitFor(t, regexp.MustCompile(`msg=passage .*verdict=pass`), 10*time.Second)

	// sentinel reload: signals the running daemon and shows what it did.
	writeSecret(t, path, next)
	code, out := sentinel(t, w.Bins, "reload", "--config", path)
	if code != 0 || !strings.Contains(out, "reloaded") {
		t.Errorf("sentinel reload: exit %d\n%s", code, out)
	}
	select {
	case <-ag.done:
		t.Fatalf("the daemon ended on SIGHUP (%v):\n%s", ag.cmd.ProcessState, ag.output())
	default:
	}
	ag.stop(t)
	if ec := ag.cmd.ProcessState.ExitCode(); ec != 0 {
		t.Errorf("daemon exit code %d after reloads and SIGINT, want 0", ec)
	}
	if code, out := sentinel(t, w.Bins, "reload", "--config", path); code != 1 || !strings.Contains(out, "not running") {
		t.Errorf("sentinel reload without a daemon: exit %d\n%s", code, out)
	}
}

// TestE2EStatusPassages: `sentinel status` and `sentinel passages` while the daemon runs,
// read-only; status says when the daemon does not run (build item 4).
func TestE2EStatusPassages(t *testing.T) {
	broker := mqtttest.Start(t)
	w := newWorld(t)
	path := filepath.Join(w.Dir, "sentinel.yaml")
	ag := w.agent(t, fieldUnit(w, "tools-01", broker.URL(), "", "install: {unit: 某超市, location: 北门, brand: Acme, status: installed}\n"))
	for _, tok := range []string{"HC-GREEN-FRESH", "HC-RED", "HC-GREEN-FRESH"} {
		fmt.Fprintln(w.Scan, tok)
		ag.waitFor(t, regexp.MustCompile(`msg=passage `), 10*time.Second)
	}
	var st struct {
		Daemon struct {
			Running bool
			PID     int
		}
		Status record.Status
		Queue  struct{ Pending int64 }
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out := sentinel(t, w.Bins, "status", "--config", path, "--json")
		if code != 0 {
			t.Fatalf("status --json: exit %d\n%s", code, out)
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status --json is not JSON: %v\n%s", err, out)
		}
		if st.Status.LastPassage != nil && st.Status.LastPassage.Verdict == "pass" && st.Status.Platform == "online" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the last passage and the platform online:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !st.Daemon.Running || st.Daemon.PID != ag.cmd.Process.Pid || st.Status.Mode != "normal" || st.Status.Tamper != "normal" || st.Status.FireAlarm == "" {
		t.Errorf("status: %+v", st)
	}
	code, text := sentinel(t, w.Bins, "status", "--config", path)
	for _, want := range []string{"daemon", "running", "mode", "platform", "online", "queue", "last passage", "fire alarm", "tamper", "selftest", "docked"} {
		if !strings.Contains(text, want) {
			t.Errorf("status text lacks %q:\n%s", want, text)
		}
	}
	if code != 0 {
		t.Errorf("status: exit %d", code)
	}

	code, out := sentinel(t, w.Bins, "passages", "--config", path, "--last", "2", "--json")
	var ps []record.Passage
	if code != 0 || json.Unmarshal([]byte(out), &ps) != nil || len(ps) != 2 {
		t.Fatalf("passages --last 2 --json: exit %d\n%s", code, out)
	}
	if ps[0].Reason != "health_code_red" || ps[1].Verdict != "pass" || ps[1].Seq != 3 {
		t.Errorf("the last two passages, oldest first: %+v", ps)
	}
	code, out = sentinel(t, w.Bins, "passages", "--config", path, "--last", "5")
	if code != 0 || strings.Count(out, "\n") != 4 || idNumber.MatchString(out) || !strings.Contains(out, "health_code_red") {
		t.Errorf("passages --last 5 (a header and 3 rows, masked): exit %d\n%s", code, out)
	}

	ag.stop(t)
	code, out = sentinel(t, w.Bins, "status", "--config", path)
	if code != 1 || !strings.Contains(out, "not running") {
		t.Errorf("status without a daemon: exit %d\n%s", code, out)
	}
}

// TestE2EBenchSelftest: a bench unit (barrier.driver fake, the template's active-low inputs,
// the simulator) reaches a passing selftest (the clock row passes where NTP synchronised
// this machine's clock); its outcome is stored and the daemon publishes it (findings 2 and
// 5).
func TestE2EBenchSelftest(t *testing.T) {
	broker := mqtttest.Start(t)
	sw := watchStatuses(t, broker)
	w := newWorld(t)
	path := filepath.Join(w.Dir, "sentinel.yaml")
	cfg := fieldUnit(w, "bench-01", broker.URL(), "", "install: {unit: 某超市, location: 北门, brand: Acme, status: installed}\n")
	writeSecret(t, path, cfg)
	out, err := exec.Command(filepath.Join(w.Bins, "sentinel"), "selftest", "--config", path, "--json").Output()
	var st struct {
		OK     bool
		Checks []struct{ Check, Result, Detail string }
	}
	if jerr := json.Unmarshal(out, &st); jerr != nil {
		t.Fatalf("selftest --json: %v (%v)\n%s", jerr, err, out)
	}
	synced := machineClockSynced()
	var failed []string
	for _, c := range st.Checks {
		want := "PASS"
		switch c.Check {
		case "clock":
			if !synced {
				want = "FAIL"
			}
		case "id-card reader", "camera", "face trigger", "input door_sensor", "input presence":
			want = "N/A"
		}
		if c.Result != want {
			t.Errorf("selftest %s: %s (%s), want %s", c.Check, c.Result, c.Detail, want)
		}
		if c.Result == "FAIL" {
			failed = append(failed, c.Check)
		}
		if (c.Check == "barrier relay" || strings.HasPrefix(c.Check, "input ")) && c.Result == "PASS" && !strings.Contains(c.Detail, "simulated") {
			t.Errorf("selftest %s passes without saying it is simulated: %s", c.Check, c.Detail)
		}
	}
	if st.OK != synced || (err == nil) != synced {
		t.Errorf("selftest ok=%v (err %v), want %v on this machine (clock synced %v)", st.OK, err, synced, synced)
	}
	if !synced {
		t.Log("this machine's clock is not NTP-synchronised: the clock row fails, as it would on a unit")
	}
	ag := w.agent(t, cfg)
	s := sw.wait(t, "bench-01", "the stored selftest", func(s record.Status) bool { return s.Selftest != nil })
	if s.Selftest.OK != synced || s.Selftest.At == "" || strings.Join(s.Selftest.Failed, ",") != strings.Join(failed, ",") || s.Selftest.Source != "cli" {
		t.Errorf("status selftest %+v, want ok=%v failed=%v from the command line", s.Selftest, synced, failed)
	}
	if s.Docked == !synced {
		t.Errorf("docked=%v with selftest ok=%v", s.Docked, s.Selftest.OK)
	}
	ag.stop(t)
	if _, err := os.Stat(filepath.Join(w.Dir, "selftest.json")); err != nil {
		t.Errorf("the selftest is not stored beside the queue: %v", err)
	}
}

// TestE2EDockingCheckCounts: sentinel docking-check, run while the daemon runs (another
// process), is stored beside the queue; the daemon publishes it and counts it: a passed one
// is evidence, a failed one keeps the unit from docked until it passes again (finding 2).
func TestE2EDockingCheckCounts(t *testing.T) {
	broker := mqtttest.Start(t)
	sw := watchStatuses(t, broker)
	secrets := t.TempDir()
	writeSecret(t, filepath.Join(secrets, "secret"), "issued-secret-of-dock-01-0000000\n")
	w := newWorld(t, "--app-key", "AK-dock-01", "--secret-file", filepath.Join(secrets, "secret"))
	path := filepath.Join(w.Dir, "sentinel.yaml")
	cfg := fieldUnit(w, "dock-01", broker.URL(), "", "install: {unit: 某超市, location: 北门, brand: Acme, status: installed}\n")
	cfg = strings.Replace(cfg, "probe_interval: 500ms}", fmt.Sprintf("probe_interval: 500ms, app_key: AK-dock-01, secret_file: %s}", filepath.Join(secrets, "secret")), 1)
	w.agent(t, cfg)
	sw.wait(t, "dock-01", "docked by its own platform check", func(s record.Status) bool { return s.Docked })

	if code, out := sentinel(t, w.Bins, "docking-check", "--config", path, "--qr", "HC-GREEN-FRESH"); code != 0 {
		t.Fatalf("docking-check: exit %d\n%s", code, out)
	}
	s := sw.wait(t, "dock-01", "the passed docking-check", func(s record.Status) bool { return s.DockingCheck != nil && s.DockingCheck.OK })
	if !s.Docked || s.DockingCheck.Source != "docking" || s.DockingCheck.Mapping == "" || s.DockingCheck.Version == "" {
		t.Errorf("status after a passed docking-check: docked %v %+v", s.Docked, s.DockingCheck)
	}
	// A token the platform does not know: the mapping row fails, so does the check.
	if code, out := sentinel(t, w.Bins, "docking-check", "--config", path, "--qr", "HC-UNKNOWN-0001"); code != 1 {
		t.Fatalf("docking-check with an unknown token: exit %d, want 1\n%s", code, out)
	}
	s = sw.wait(t, "dock-01", "not docked after a failed docking-check", func(s record.Status) bool {
		return s.DockingCheck != nil && !s.DockingCheck.OK && !s.Docked
	})
	if why := strings.Join(s.Docking.Why, "; "); !strings.Contains(why, "docking-check") || !strings.Contains(why, "known credential mapped completely") {
		t.Errorf("why not docked: %s", why)
	}
	if _, err := os.Stat(filepath.Join(w.Dir, "docking-check.json")); err != nil {
		t.Errorf("the docking-check is not stored beside the queue: %v", err)
	}
}
