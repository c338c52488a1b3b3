package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	for in, want := range map[string]time.Time{
		"2026-11-25T00:00:00Z": time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC),
		"24h":                  now.Add(-24 * time.Hour),
		"2026-11-20":           time.Date(2026, 11, 20, 0, 0, 0, 0, time.Local),
	} {
		if got, err := parseReportTime(in, now); err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1h", "soon"} {
		if _, err := parseReportTime(in, now); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
