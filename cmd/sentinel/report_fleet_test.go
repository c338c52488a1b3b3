package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sentinel-edge/sentinel/agent"
)

func TestFleetRows(t *testing.T) {
	units := []fleetUnit{
		{topic: "sentinel/v1/v1/gate-01/status", status: agent.Status{Online: true, Unit: "某超市", InstallStatus: "installed", Docked: true,
			LastSeen: "2026-11-25T08:00:00.000Z", Clock: agent.ClockSynced, QueuePending: 3}},
		// A unit whose clock booted at 1970: its time is shown, and marked.
		{topic: "sentinel/v1/v1/gate-02/status", status: agent.Status{Online: true, Unit: "-1+1", InstallStatus: "installed",
			LastSeen: "1970-01-01T00:02:00.000Z", Clock: agent.ClockUnsynced}},
		{topic: "sentinel/v1/v1/gate-03/status", status: agent.Status{Unit: "某医院", InstallStatus: "installing", Will: true}},
	}
	rows := fleetRows(units, "en")
	want := [][]string{
		{"1", "某超市", "installed", "", "", "", "3/3 docked", "yes", "2026-11-25T08:00:00.000Z", "3", "yes", "v1", "gate-01"},
		{"2", "-1+1", "installed", "", "", "", "2/3 installed, not docked", "no", "1970-01-01T00:02:00.000Z (clock unsynced)", "0", "yes", "v1", "gate-02"},
		{"3", "某医院", "installing", "", "", "", "1/3 installing", "no", "", "0", "no", "v1", "gate-03"},
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
	if !strings.HasPrefix(s, "\uFEFFserial number,") || strings.Count(s, "\r\n") != 4 || !strings.Contains(s, "\r\n2,'-1+1,") {
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
