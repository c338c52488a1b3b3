package main

import (
	"bytes"
	"crypto/tls"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sentinel-edge/sentinel/agent/clock"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/mqtttest"
)

func TestFleetRows(t *testing.T) {
	fn := fleetNow
	fleetNow = func() time.Time { return time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC) }
	t.Cleanup(func() { fleetNow = fn })
	units := []fleetUnit{
		{topic: "sentinel/v1/v1/gate-01/status", status: record.Status{Online: true, Unit: "某超市", InstallStatus: "installed", Docked: true,
			LastSeen: "2026-11-25T08:00:00.000Z", Clock: clock.Synced, QueuePending: 3}},
		// A unit whose clock booted at 1970: its time is shown, and marked.
		{topic: "sentinel/v1/v1/gate-02/status", status: record.Status{Online: true, Unit: "-1+1", InstallStatus: "installed",
			LastSeen: "1970-01-01T00:02:00.000Z", Clock: clock.Unsynced}},
		{topic: "sentinel/v1/v1/gate-03/status", status: record.Status{Unit: "某医院", InstallStatus: "installing", Will: true}},
		// Broken clocks that claim to be synced: the time is shown, and marked.
		{topic: "sentinel/v1/v1/gate-04/status", status: record.Status{Online: true, InstallStatus: "installed", LastSeen: "1970-01-01T00:00:09.000Z", Clock: clock.Synced}},
		{topic: "sentinel/v1/v1/gate-05/status", status: record.Status{Online: true, InstallStatus: "installed", LastSeen: "2099-01-01T00:00:00.000Z", Clock: clock.Synced}},
		{topic: "sentinel/v1/v1/gate-06/status", status: record.Status{Online: true, InstallStatus: "installed", TS: "yesterday", Clock: clock.Synced}},
	}
	rows := fleetRows(units, "en")
	want := [][]string{
		{"1", "某超市", "installed", "", "", "", "3/3 docked", "yes", "2026-11-25T08:00:00.000Z", "3", "yes", "v1", "gate-01", ""},
		{"2", "-1+1", "installed", "", "", "", "2/3 installed, not docked", "no", "1970-01-01T00:02:00.000Z (clock unsynced)", "0", "yes", "v1", "gate-02", ""},
		{"3", "某医院", "installing", "", "", "", "1/3 installing", "no", "", "0", "no", "v1", "gate-03", "unit offline (its last will: power, network or crash) since ?; docked when last seen: no"},
		{"4", "", "installed", "", "", "", "2/3 installed, not docked", "no", "1970-01-01T00:00:09.000Z (clock implausible)", "0", "yes", "v1", "gate-04", ""},
		{"5", "", "installed", "", "", "", "2/3 installed, not docked", "no", "2099-01-01T00:00:00.000Z (clock implausible)", "0", "yes", "v1", "gate-05", ""},
		{"6", "", "installed", "", "", "", "2/3 installed, not docked", "no", "yesterday (clock implausible)", "0", "yes", "v1", "gate-06", ""},
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d:\n got %q\nwant %q", i, rows[i], want[i])
		}
	}
	if zh := fleetRows(units[:1], "zh"); zh[0][2] != "已安装" || zh[0][7] != "是" {
		t.Errorf("zh row %q", zh[0])
	}
	var b bytes.Buffer
	writeCSV(&b, fleetColumns["en"], rows, true)
	s := b.String()
	if !strings.HasPrefix(s, "\uFEFFserial number,") || strings.Count(s, "\r\n") != 7 || !strings.Contains(s, "\r\n2,'-1+1,") {
		t.Errorf("xlsx-compatible csv: %q", s)
	}
	b.Reset()
	writeCSV(&b, fleetColumns["en"], rows, false)
	if strings.Contains(b.String(), "\r") || strings.Contains(b.String(), "'-1+1") {
		t.Errorf("plain csv must be plain: %q", b.String())
	}
	b.Reset()
	writeMarkdown(&b, []string{"a", "b"}, [][]string{{"x|y", "z"}})
	if b.String() != "| a | b |\n|---|---|\n| x\\|y | z |\n" {
		t.Errorf("markdown %q", b.String())
	}
}

func TestFleetUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"--broker", "127.0.0.1:1883"}, {"--broker", "tcp://127.0.0.1:1", "--format", "pdf"}, {"--broker", "tcp://127.0.0.1:1", "--lang", "fr"},
		{"--broker", "ssl://127.0.0.1:1", "--cert", "c.pem"}, {"--broker", "tcp://127.0.0.1:1", "--password-file", "p"},
		{"--broker", "ssl://127.0.0.1:1", "--ca", "/nonexistent/ca.pem"}, {"--config", "/nonexistent.yaml"}} {
		var out, errb bytes.Buffer
		if code := cmdReportFleet(args, &out, &errb); code != exitUsage || errb.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want a usage error", args, code, errb.String())
		}
	}
}

// TestFleetBadStatuses: against a real broker, a unit whose status is not JSON is skipped,
// named and counted; a unit with a broken clock is reported with its time marked; an empty
// retained message (a decommissioned unit) is no row; the good units are all there.
func TestFleetBadStatuses(t *testing.T) {
	good := `{"online":true,"ts":"2026-11-25T08:00:00.000Z","last_seen":"2026-11-25T08:00:00.000Z","clock":"synced","unit":"某超市","install_status":"installed","docked":true,"queue_pending":2}`
	boot1970 := `{"online":true,"ts":"1970-01-01T00:02:00.000Z","last_seen":"1970-01-01T00:02:00.000Z","clock":"unsynced","unit":"某医院","install_status":"installed"}`
	broker := retainedStatuses(t, map[string]string{
		"sentinel/v1/350582-0001/gate-01/status": good,
		"sentinel/v1/350582-0001/gate-02/status": boot1970,
		"sentinel/v1/350582-0001/gate-03/status": `{"online":tru`,
		"sentinel/v1/350582-0001/gate-04/status": `{"online":true,"queue_pending":"many"}`,
		"sentinel/v1/350582-0001/gate-05/status": "",
	})
	var out, errb bytes.Buffer
	if code := cmdReportFleet([]string{"--broker", broker.URL()}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "1,某超市,installed,") || !strings.HasSuffix(lines[1], ",gate-01,") ||
		!strings.Contains(lines[2], ",1970-01-01T00:02:00.000Z (clock unsynced),") || !strings.HasSuffix(lines[2], ",gate-02,") {
		t.Errorf("report:\n%s", out.String())
	}
	for _, want := range []string{"skipped sentinel/v1/350582-0001/gate-03/status", "skipped sentinel/v1/350582-0001/gate-04/status",
		"2 status message(s) skipped, 2 unit(s) reported"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
}

// TestFleetTruthRows: the table takes progress, install status and docked as the unit
// derived them, marks an offline unit not docked, and gives the reason for every "no" and
// the evidence of a "yes" (issue #14, finding 2).
func TestFleetTruthRows(t *testing.T) {
	units := []fleetUnit{
		{topic: "sentinel/v1/v1/gate-01/status", status: record.Status{Online: true, InstallStatus: "installed", Docked: true, Clock: clock.Synced,
			Docking:  &record.DockingState{Check: record.SelftestDocking, At: "2026-11-25T07:00:00.000Z", Version: "v0.4.0"},
			Progress: &record.Progress{Step: 3, Of: 3, State: "docked"}}},
		// A unit that was only provisioned says installed in its config, but its facts say
		// installing.
		{topic: "sentinel/v1/v1/gate-02/status", status: record.Status{Online: true, InstallStatus: "installed", Docked: false,
			Docking:  &record.DockingState{Why: []string{"install.unit, install.location, install.brand not set (the city's table needs them)"}},
			Progress: &record.Progress{Step: 1, Of: 3, State: "installing", Why: []string{"install.unit, install.location, install.brand not set (the city's table needs them)"}}}},
		{topic: "sentinel/v1/v1/gate-03/status", status: record.Status{Online: true, InstallStatus: "installed",
			Docking:  &record.DockingState{Why: []string{"the last sentinel selftest (2026-11-25T06:00:00.000Z) failed: barrier relay"}},
			Progress: &record.Progress{Step: 2, Of: 3, State: "installed"}}},
		// Docked when it was last seen, gone since: not docked now.
		{topic: "sentinel/v1/v1/gate-04/status", status: record.Status{Online: false, Will: true, InstallStatus: "installed", Docked: true, LastSeen: "2026-11-20T08:00:00.000Z",
			Progress: &record.Progress{Step: 3, Of: 3, State: "docked"}}},
	}
	rows := fleetRows(units, "en")
	want := []struct{ install, progress, docked, remarks string }{
		{"installed", "3/3 docked", "yes", "verified by sentinel docking-check at 2026-11-25T07:00:00.000Z (version v0.4.0)"},
		{"installing", "1/3 installing", "no", "install.unit, install.location, install.brand not set"},
		{"installed", "2/3 installed, not docked", "no", "sentinel selftest (2026-11-25T06:00:00.000Z) failed: barrier relay"},
		{"installed", "3/3 docked", "no", "unit offline (its last will: power, network or crash) since 2026-11-20T08:00:00.000Z; docked when last seen: yes"},
	}
	for i, w := range want {
		r := rows[i]
		if r[2] != w.install || r[6] != w.progress || r[7] != w.docked || !strings.Contains(r[13], w.remarks) {
			t.Errorf("row %d: install %q progress %q docked %q remarks %q; want %+v", i+1, r[2], r[6], r[7], r[13], w)
		}
	}
}

// TestFleetMutualTLS (issue #14, finding 1): against a broker that takes only clients with
// a certificate of its CA, the report connects with a unit's own uplink settings (--config)
// or with explicit --ca, --cert, --key; without a CA it fails with exit 1 and says what to
// give.
func TestFleetMutualTLS(t *testing.T) {
	fq := fleetQuiet
	fleetQuiet = 200 * time.Millisecond
	t.Cleanup(func() { fleetQuiet = fq })
	dir := t.TempDir()
	ca := mqtttest.NewCA(t, dir, "city-ca")
	bcert, bkey := ca.Issue(t, "broker")
	broker := mqtttest.StartWith(t, mqtttest.Options{TLS: &mqtttest.TLSFiles{CAFile: ca.CertFile, CertFile: bcert, KeyFile: bkey, RequireClientCert: true}})
	ucert, ukey := ca.Issue(t, "gate-01")
	cert, err := tls.LoadX509KeyPair(ucert, ukey)
	if err != nil {
		t.Fatal(err)
	}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("fleet-tls-pub").
		SetTLSConfig(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	status := `{"online":true,"ts":"2026-11-25T08:00:00.000Z","clock":"synced","unit":"某超市","install_status":"installed","docked":true}`
	if tok := c.Publish("city/v2/350582-0001/gate-01/status", 1, true, []byte(status)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	cfgPath := filepath.Join(dir, "unit.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(`device: {id: gate-01, venue: "350582-0001", style: gate_all_in_one}
scanners: {qr: {driver: serial, port: /dev/null}}
platform: {url: "http://127.0.0.1:1"}
barrier: {driver: fake}
queue: {path: %s}
uplink: {brokers: ["tcp://127.0.0.1:1", "%s"], topic_prefix: city/v2, tls: {ca_file: %s, cert_file: %s, key_file: %s}}
`, filepath.Join(dir, "q.db"), broker.URL(), ca.CertFile, ucert, ukey)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The unit's own settings: its brokers in order (the first is down), its TLS files, its
	// topic prefix.
	var out, errb bytes.Buffer
	if code := cmdReportFleet([]string{"--config", cfgPath, "--wait", "2s"}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "\n1,某超市,installed,") {
		t.Errorf("--config: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := cmdReportFleet([]string{"--broker", broker.URL(), "--prefix", "city/v2", "--ca", ca.CertFile, "--cert", ucert, "--key", ukey}, &out, &errb); code != exitOK ||
		!strings.Contains(out.String(), ",gate-01,") {
		t.Errorf("--ca --cert --key: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := cmdReportFleet([]string{"--broker", broker.URL(), "--prefix", "city/v2", "--wait", "2s"}, &out, &errb); code != exitFailure ||
		!strings.Contains(errb.String(), "--config FILE") || !strings.Contains(errb.String(), "--ca FILE") {
		t.Errorf("without a CA: exit %d, stderr %s", code, errb.String())
	}
	// Nothing under a prefix no unit uses: exit 1 with a hint, not an empty table.
	errb.Reset()
	if code := cmdReportFleet([]string{"--config", cfgPath, "--prefix", "nobody/v1", "--wait", "2s"}, &out, &errb); code != exitFailure ||
		!strings.Contains(errb.String(), "no unit status under nobody/v1/+/+/status") {
		t.Errorf("empty report: exit %d, stderr %s", code, errb.String())
	}
}

// Issue #14, finding 8: --help showed "(default: all) (default "+")".
func TestFleetHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := cmdReportFleet([]string{"--help"}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "every venue") ||
		strings.Contains(out.String(), `(default "+")`) || strings.Contains(out.String(), "(default: all)") || errb.Len() != 0 {
		t.Errorf("--help: exit %d:\n%s\nstderr: %s", code, out.String(), errb.String())
	}
}

// TestFleetNoInstallFacts (probeC finding 3): a status without install facts is not counted
// installed: it is 1/3 installing, its install status unknown, and the remarks name the
// missing facts; a payload that is not a JSON object (null, an array, a string, a number)
// is skipped and counted as not a status.
func TestFleetNoInstallFacts(t *testing.T) {
	broker := retainedStatuses(t, map[string]string{
		"sentinel/v1/350582-9999/x1/status": `{}`,
		"sentinel/v1/350582-9999/x2/status": `{"online":true}`,
		"sentinel/v1/350582-9999/x3/status": `null`,
		"sentinel/v1/350582-9999/x4/status": ` [1]`,
		"sentinel/v1/350582-9999/x5/status": `"installed"`,
		"sentinel/v1/350582-9999/x6/status": `42`,
		"sentinel/v1/350582-9999/x7/status": `{"online":true,"unit":"某超市","install_status":"installed"}`,
	})
	var out, errb bytes.Buffer
	if code := cmdReportFleet([]string{"--broker", broker.URL(), "--venue", "350582-9999"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	rows := map[string][]string{}
	recs, err := csv.NewReader(&out).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("csv: %v", err)
	}
	for _, f := range recs[1:] {
		rows[f[12]] = f
	}
	if len(rows) != 3 {
		t.Fatalf("want rows for x1, x2, x7 only:\n%s\n%s", out.String(), errb.String())
	}
	for _, dev := range []string{"x1", "x2"} {
		r := rows[dev]
		if r == nil || r[2] != "unknown" || r[6] != "1/3 installing" || !strings.Contains(r[13], "no install facts") || !strings.Contains(r[13], "install_status") {
			t.Errorf("%s: %q; want install status unknown, 1/3 installing and a remark naming the missing facts", dev, r)
		}
	}
	if r := rows["x7"]; r == nil || r[2] != "installed" || r[6] != "2/3 installed, not docked" {
		t.Errorf("x7 (install facts given): %q", r)
	}
	for _, dev := range []string{"x3", "x4", "x5", "x6"} {
		if !strings.Contains(errb.String(), "skipped sentinel/v1/350582-9999/"+dev+"/status: not a status message") {
			t.Errorf("%s not skipped as not a status:\n%s", dev, errb.String())
		}
	}
	if !strings.Contains(errb.String(), "4 status message(s) skipped, 3 unit(s) reported") {
		t.Errorf("count:\n%s", errb.String())
	}
}

// TestFleetWildcards (probeC finding 4): + and # are refused in --prefix and --venue, and so
// is an explicitly empty --prefix, before any connection (exit 2).
func TestFleetWildcards(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"prefix #", []string{"--prefix", "a/#"}, "wildcards"},
		{"prefix +", []string{"--prefix", "+"}, "wildcards"},
		{"prefix level +", []string{"--prefix", "sentinel/+"}, "wildcards"},
		{"venue +", []string{"--venue", "+"}, "wildcards"},
		{"venue #", []string{"--venue", "#"}, "wildcards"},
		{"venue a+b", []string{"--venue", "35+"}, "wildcards"},
		{"empty prefix", []string{"--prefix", ""}, "--prefix"},
		{"empty prefix =", []string{"--prefix="}, "--prefix"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			// Nothing listens on port 1: a refusal must come before connecting.
			args := append([]string{"--broker", "tcp://127.0.0.1:1", "--wait", "200ms"}, tt.args...)
			if code := cmdReportFleet(args, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), tt.want) || strings.Contains(errb.String(), "connect") {
				t.Errorf("%q: exit %d %s; want exit 2 naming %q", tt.args, code, errb.String(), tt.want)
			}
		})
	}
}

// retainedStatuses starts a broker holding payloads as retained messages by topic, with a
// short fleetQuiet for the report.
func retainedStatuses(t *testing.T, payloads map[string]string) *mqtttest.Broker {
	t.Helper()
	fq := fleetQuiet
	fleetQuiet = 200 * time.Millisecond
	t.Cleanup(func() { fleetQuiet = fq })
	broker := mqtttest.Start(t)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("fleet-test-pub"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	for topic, payload := range payloads {
		if tok := c.Publish(topic, 1, true, []byte(payload)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	return broker
}
