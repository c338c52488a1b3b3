package e2e_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2ESecretFileNotRegular (issue #11, finding 9): `sentinel run` with platform.secret_file
// naming /dev/zero or a FIFO fails at once with exit 1 and a message naming the key and what
// is wrong, instead of reading /dev/zero until the kernel kills it or blocking on the FIFO
// for ever (deaf to SIGTERM). A 0644 secret is refused with the chmod to run, and a config
// that is itself a FIFO is refused by `sentinel check` (exit 2).
func TestE2ESecretFileNotRegular(t *testing.T) {
	bins := binDir(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "secret.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open-secret")
	if err := os.WriteFile(open, []byte("k3Jd8sPq0ZxV2mW9tY4uB7nR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	cfgFor := func(name, secret string) string {
		path := filepath.Join(dir, name+".yaml")
		cfg := fmt.Sprintf(`device: {id: gate-01, venue: "350582-0001", style: reduced_gate}
scanners:
  qr: {driver: serial, port: %s}
platform: {url: "http://127.0.0.1:9", app_key: AK-gate-01, secret_file: %s}
queue: {path: %s}
uplink: {brokers: ["tcp://127.0.0.1:9"]}
screen: {listen: "off"}
metrics: {listen: "off"}
`, filepath.Join(dir, "no-tty"), secret, filepath.Join(dir, name+".db"))
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name, secret string
		say          []string
	}{
		{"dev-zero", "/dev/zero", []string{"platform.secret_file", "/dev/zero", "not a regular file"}},
		{"fifo", fifo, []string{"platform.secret_file", fifo, "not a regular file", "FIFO"}},
		{"world-readable", open, []string{"platform.secret_file", "chmod 600 " + open}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runBounded(t, filepath.Join(bins, "sentinel"), "run", "--config", cfgFor(tt.name, tt.secret))
			if code != 1 {
				t.Errorf("exit %d, want 1; stderr:\n%s", code, out)
			}
			for _, s := range tt.say {
				if !strings.Contains(out, s) {
					t.Errorf("stderr lacks %q:\n%s", s, out)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, tt.name+".db")); err == nil {
				t.Error("the outbox was created before the secret was refused")
			}
		})
	}
	t.Run("config-fifo", func(t *testing.T) {
		cfg := filepath.Join(dir, "sentinel.yaml")
		if err := syscall.Mkfifo(cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		code, out := runBounded(t, filepath.Join(bins, "sentinel"), "check", "--config", cfg)
		if code != 2 || !strings.Contains(out, "not a regular file") {
			t.Errorf("exit %d, want 2 naming the problem; stderr:\n%s", code, out)
		}
	})
}

// runBounded runs a command that must end by itself within 10s; if it does not, it is sent
// SIGTERM (which must end it within 5s) and the test fails.
func runBounded(t *testing.T, name string, args ...string) (int, string) {
	t.Helper()
	var out strings.Builder
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s %s did not end within 10s; sending SIGTERM", filepath.Base(name), args[0])
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("%s ignored SIGTERM; killing it", filepath.Base(name))
			_ = cmd.Process.Kill()
			err = <-done
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(name), err)
	}
	return 0, out.String()
}
