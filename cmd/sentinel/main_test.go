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
		{"--version", []string{"--version"}, exitOK, "sentinel ", ""},
		{"-v", []string{"-v"}, exitOK, "sentinel ", ""},
		{"-v json", []string{"-v", "--json"}, exitOK, `"go_version"`, ""},
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

// Issue #14, finding 8: --help printed its text twice, on stdout and on stderr. It goes once
// to stdout for --help (exit 0), and once to stderr after a usage error (exit 2).
func TestHelpPrintedOnce(t *testing.T) {
	for name := range commands {
		if name == "report" {
			continue // its kinds have their own flags, below
		}
		for _, args := range [][]string{{name, "--help"}, {name, "-h"}, {"help", name}} {
			var out, errb bytes.Buffer
			if code := run(args, &out, &errb); code != exitOK {
				t.Errorf("%v: exit %d", args, code)
			}
			if n := strings.Count(out.String(), "Usage: sentinel"); n != 1 || errb.Len() != 0 {
				t.Errorf("%v: the usage is on stdout %d times, stderr has %q", args, n, errb.String())
			}
		}
		var out, errb bytes.Buffer
		if code := run([]string{name, "--no-such-flag"}, &out, &errb); code != exitUsage {
			t.Errorf("%s --no-such-flag: exit %d, want %d", name, code, exitUsage)
		}
		if n := strings.Count(errb.String(), "Usage: sentinel"); n != 1 || out.Len() != 0 || !strings.Contains(errb.String(), "no-such-flag") {
			t.Errorf("%s --no-such-flag: the usage is on stderr %d times (stdout %q): %s", name, n, out.String(), errb.String())
		}
	}
	for name := range reports {
		var out, errb bytes.Buffer
		if code := run([]string{"report", name, "--help"}, &out, &errb); code != exitOK || strings.Count(out.String(), "Usage: sentinel") != 1 || errb.Len() != 0 {
			t.Errorf("report %s --help: exit %d, stdout %q, stderr %q", name, code, out.String(), errb.String())
		}
	}
}
