package main

import (
	"bytes"
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
		{"1", "某超市", "installed", "", "", "", "3/3 docked", "yes", "2026-11-25T08:00:00.000Z", "3", "yes", "v1", "gate-01"},
		{"2", "-1+1", "installed", "", "", "", "2/3 installed, not docked", "no", "1970-01-01T00:02:00.000Z (clock unsynced)", "0", "yes", "v1", "gate-02"},
		{"3", "某医院", "installing", "", "", "", "1/3 installing", "no", "", "0", "no", "v1", "gate-03"},
		{"4", "", "installed", "", "", "", "2/3 installed, not docked", "no", "1970-01-01T00:00:09.000Z (clock implausible)", "0", "yes", "v1", "gate-04"},
		{"5", "", "installed", "", "", "", "2/3 installed, not docked", "no", "2099-01-01T00:00:00.000Z (clock implausible)", "0", "yes", "v1", "gate-05"},
		{"6", "", "installed", "", "", "", "2/3 installed, not docked", "no", "yesterday (clock implausible)", "0", "yes", "v1", "gate-06"},
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
	for _, args := range [][]string{{}, {"--broker", "127.0.0.1:1883"}, {"--broker", "tcp://127.0.0.1:1", "--format", "pdf"}, {"--broker", "tcp://127.0.0.1:1", "--lang", "fr"}} {
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
	fq := fleetQuiet
	fleetQuiet = 200 * time.Millisecond
	t.Cleanup(func() { fleetQuiet = fq })
	broker := mqtttest.Start(t)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("fleet-test-pub"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	good := `{"online":true,"ts":"2026-11-25T08:00:00.000Z","last_seen":"2026-11-25T08:00:00.000Z","clock":"synced","unit":"某超市","install_status":"installed","docked":true,"queue_pending":2}`
	boot1970 := `{"online":true,"ts":"1970-01-01T00:02:00.000Z","last_seen":"1970-01-01T00:02:00.000Z","clock":"unsynced","unit":"某医院","install_status":"installed"}`
	for topic, payload := range map[string]string{
		"sentinel/v1/350582-0001/gate-01/status": good,
		"sentinel/v1/350582-0001/gate-02/status": boot1970,
		"sentinel/v1/350582-0001/gate-03/status": `{"online":tru`,
		"sentinel/v1/350582-0001/gate-04/status": `{"online":true,"queue_pending":"many"}`,
		"sentinel/v1/350582-0001/gate-05/status": "",
	} {
		if tok := c.Publish(topic, 1, true, []byte(payload)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	var out, errb bytes.Buffer
	if code := cmdReportFleet([]string{"--broker", broker.URL()}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "1,某超市,installed,") || !strings.HasSuffix(lines[1], ",gate-01") ||
		!strings.Contains(lines[2], ",1970-01-01T00:02:00.000Z (clock unsynced),") || !strings.HasSuffix(lines[2], ",gate-02") {
		t.Errorf("report:\n%s", out.String())
	}
	for _, want := range []string{"skipped sentinel/v1/350582-0001/gate-03/status", "skipped sentinel/v1/350582-0001/gate-04/status",
		"2 status message(s) skipped, 2 unit(s) reported"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
}

// Issue #14, finding 8: --help showed "(default: all) (default "+")", and an empty report
// printed a header only, exit 0, without a word: it says why nothing was found.
func TestFleetHelpAndEmpty(t *testing.T) {
	var out, errb bytes.Buffer
	if code := cmdReportFleet([]string{"--help"}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "every venue when not given") ||
		strings.Contains(out.String(), `(default "+")`) || strings.Contains(out.String(), "(default: all)") {
		t.Errorf("--help: exit %d:\n%s", code, out.String())
	}
	fq := fleetQuiet
	fleetQuiet = 200 * time.Millisecond
	t.Cleanup(func() { fleetQuiet = fq })
	broker := mqtttest.Start(t)
	out.Reset()
	errb.Reset()
	if code := cmdReportFleet([]string{"--broker", broker.URL(), "--venue", "350582-0009"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if lines := strings.Count(out.String(), "\n"); lines != 1 {
		t.Errorf("an empty report has %d lines, want the header only:\n%s", lines, out.String())
	}
	for _, want := range []string{"no unit found", "was reached", "sentinel/v1/350582-0009/+/status", "--prefix", "uplink.topic_prefix"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("the empty report's hint lacks %q: %s", want, errb.String())
		}
	}
}
