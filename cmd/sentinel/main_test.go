package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("device: {id: x, colour: red}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no args", nil, exitUsage, "", "Commands:"},
		{"help", []string{"help"}, exitOK, "Exit codes", ""},
		{"unknown", []string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{"version", []string{"version"}, exitOK, "sentinel ", ""},
		{"version json", []string{"version", "--json"}, exitOK, `"go_version"`, ""},
		{"check help", []string{"check", "--help"}, exitOK, "--config", ""},
		{"check demo", []string{"check", "--config", "../../configs/demo.yaml"}, exitOK, "ok", ""},
		{"check bad", []string{"check", "--config", bad}, exitUsage, "", "line 1: device.colour: unknown key"},
		{"check missing file", []string{"check", "--config", filepath.Join(dir, "none.yaml")}, exitUsage, "", "none.yaml: cannot read config"},
		{"check no flag", []string{"check"}, exitUsage, "", "--config FILE is required"},
		{"check stray arg", []string{"check", "--config", bad, "extra"}, exitUsage, "", "unexpected argument"},
		{"run bad flag", []string{"run", "--nope"}, exitUsage, "", "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tt.args, &out, &errb)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, errb.String())
			}
			if !strings.Contains(out.String(), tt.stdout) {
				t.Errorf("stdout lacks %q: %s", tt.stdout, out.String())
			}
			if !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("stderr lacks %q: %s", tt.stderr, errb.String())
			}
		})
	}
}

func TestRunFailsFastOnMissingPort(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	body := `device: {id: d1, venue: v1, style: handheld}
scanners: {qr: {driver: serial, port: ` + filepath.Join(dir, "no-such-tty") + `}}
platform: {url: "http://127.0.0.1:1"}
queue: {path: ` + filepath.Join(dir, "q.db") + `}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"run", "--config", cfg}, &out, &errb); code != exitFailure {
		t.Fatalf("exit %d, want %d", code, exitFailure)
	}
	if !strings.Contains(errb.String(), "scanners.qr.port") {
		t.Errorf("error does not name scanners.qr.port: %s", errb.String())
	}
}
