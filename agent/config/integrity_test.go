package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/secretfile/secretfiletest"
)

// problemsOf parses y and returns its problem lines (without the file name).
func problemsOf(t *testing.T, y string) []string {
	t.Helper()
	_, err := Parse("t.yaml", []byte(y))
	if err == nil {
		return nil
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err %v is not a *Error", err)
	}
	var out []string
	for _, p := range ce.Problems {
		out = append(out, p.String())
	}
	return out
}

// TestOverflowNamesKey (issue #11, finding 10): a number too large for its key is reported
// with the key and the line, not as a bare "must be a whole number".
func TestOverflowNamesKey(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"baud", strings.Replace(minimal, "port: /dev/ttyS1", "port: /dev/ttyS1, baud: 99999999999999999999999", 1),
			`line 3: scanners.qr.baud: must be a whole number that fits`},
		{"int64", minimal + "queue: {max_bytes: 99999999999999999999}\n", `line 7: queue.max_bytes: must be a whole number that fits`},
		{"two on a line", strings.Replace(minimal, "port: /dev/ttyS1", "port: /dev/ttyS1, baud: 99999999999999999999999, max_length: 88888888888888888888", 1),
			`line 3: scanners.qr.max_length: must be a whole number that fits`},
		{"negative", strings.Replace(minimal, "port: /dev/ttyS1", "port: /dev/ttyS1, baud: -99999999999999999999999", 1),
			`line 3: scanners.qr.baud: must be a whole number that fits`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, tt.yaml)
			if !containsLine(ps, tt.want) {
				t.Errorf("problems %q lack %q", ps, tt.want)
			}
			for _, p := range ps {
				if !strings.Contains(p, ": ") || strings.HasPrefix(p, "line 3: must") {
					t.Errorf("a problem without its key: %q", p)
				}
			}
		})
	}
	ps := problemsOf(t, strings.Replace(minimal, "port: /dev/ttyS1", "port: /dev/ttyS1, baud: 99999999999999999999999, max_length: 88888888888888888888", 1))
	if !containsLine(ps, "scanners.qr.baud: must be a whole number that fits") || !containsLine(ps, `got "88888888888888888888"`) {
		t.Errorf("two overflows on one line: %q", ps)
	}
}

// TestDuplicateKey (issue #11, finding 10): a duplicate key is one problem naming it and its
// lines, not a cascade of false "is required".
func TestDuplicateKey(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string
	}{
		{"top level", minimal + "device: {id: gate-02, venue: \"350582-0001\", style: gate_all_in_one}\n", "line 7: device: is a duplicate key (also at line 1)"},
		{"uplink", minimal + "uplink: {brokers: [\"tcp://127.0.0.1:1884\"]}\n", "line 7: uplink: is a duplicate key (also at line 6)"},
		{"nested", strings.Replace(minimal, "id: gate-01, ", "id: gate-01, id: gate-02, ", 1), "line 1: device.id: is a duplicate key (also at line 1)"},
		{"in a map", minimal + "policy:\n  credentials:\n    pillar: [face]\n    pillar: [qr]\n", "line 10: policy.credentials.pillar: is a duplicate key (also at line 9)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, tt.yaml)
			if len(ps) != 1 || !strings.HasPrefix(ps[0], tt.want) {
				t.Errorf("problems %q, want exactly one starting %q", ps, tt.want)
			}
		})
	}
}

// TestZeroRefused (issue #11, finding 10): a zero that makes no sense is refused, naming the
// key, instead of being replaced by the default in silence; an absent key still gets its
// default.
func TestZeroRefused(t *testing.T) {
	set := func(old, new string) string { return strings.Replace(minimal, old, new, 1) }
	tests := []struct{ name, yaml, want string }{
		{"platform.timeout", set(`url: "http://127.0.0.1:8700"`, `url: "http://127.0.0.1:8700", timeout: 0s`), "line 4: platform.timeout: must be > 0"},
		{"platform.budget", set(`url: "http://127.0.0.1:8700"`, `url: "http://127.0.0.1:8700", budget: 0s`), "line 4: platform.budget: must be > 0"},
		{"platform.probe_interval", set(`url: "http://127.0.0.1:8700"`, `url: "http://127.0.0.1:8700", probe_interval: 0s`), "line 4: platform.probe_interval: must be > 0"},
		{"platform.cache_ttl", set(`url: "http://127.0.0.1:8700"`, `url: "http://127.0.0.1:8700", cache_ttl: 0s`), "line 4: platform.cache_ttl: must be > 0"},
		{"barrier.pulse", set("pin: GPIO17", "pin: GPIO17, pulse: 0s"), "line 5: barrier.pulse: must be > 0"},
		{"barrier.max_pulse", set("pin: GPIO17", "pin: GPIO17, max_pulse: 0s"), "line 5: barrier.max_pulse: must be > 0"},
		{"scanners.qr.baud", set("port: /dev/ttyS1", "port: /dev/ttyS1, baud: 0"), "line 3: scanners.qr.baud: must be > 0"},
		{"uplink.backoff_base", set(`brokers: ["tcp://127.0.0.1:1883"]`, `brokers: ["tcp://127.0.0.1:1883"], backoff_base: 0s`), "line 6: uplink.backoff_base: must be > 0"},
		{"uplink.max_inflight", set(`brokers: ["tcp://127.0.0.1:1883"]`, `brokers: ["tcp://127.0.0.1:1883"], max_inflight: 0`), "line 6: uplink.max_inflight: must be > 0"},
		{"status.heartbeat", minimal + "status: {heartbeat: 0s}\n", "line 7: status.heartbeat: must be > 0"},
		{"screen.verdict_hold", minimal + "screen: {verdict_hold: 0s}\n", "line 7: screen.verdict_hold: must be > 0"},
		{"commands.max_age", minimal + "commands: {max_age: 0s}\n", "line 7: commands.max_age: must be > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, tt.yaml)
			if len(ps) != 1 || !strings.HasPrefix(ps[0], tt.want) || !strings.Contains(ps[0], "leave it out for the default") {
				t.Errorf("problems %q, want one starting %q that names the default", ps, tt.want)
			}
		})
	}
	c, err := Parse("t.yaml", []byte(minimal))
	if err != nil || c.Platform.Timeout != DefaultTimeout || c.Barrier.Pulse != DefaultPulse {
		t.Fatalf("absent keys lost their defaults: %v", err)
	}
	// Zeros that mean "off" stay allowed.
	if _, err := Parse("t.yaml", []byte(minimal+"policy: {nat_max_age: 0s}\nqueue: {max_bytes: 0, retention: 0s}\n")); err != nil {
		t.Errorf("a zero that turns a check off was refused: %v", err)
	}
}

func TestIDCardDuplicateWindow(t *testing.T) {
	base := devBase + "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\n  idcard: {driver: sam, port: /dev/ttyUSB1%s}\n"
	for _, tt := range []struct {
		extra string
		want  time.Duration
		err   string
	}{
		{"", DefaultIDCardDuplicateWindow, ""},
		{", duplicate_window: 0s", 0, ""},
		{", duplicate_window: 5s", 5 * time.Second, ""},
		{", duplicate_window: 2m", 0, "scanners.idcard.duplicate_window: must be between 0s (off) and 1m0s, got 2m0s"},
		{", duplicate_window: -1s", 0, "scanners.idcard.duplicate_window: must be between"},
	} {
		c, err := Parse("d.yaml", []byte(strings.Replace(base, "%s", tt.extra, 1)))
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q: err %v, want %q", tt.extra, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf("%q: %v", tt.extra, err)
		case tt.err == "" && c.Scanners.IDCard.DuplicateWindow != tt.want:
			t.Errorf("%q: window %s, want %s", tt.extra, c.Scanners.IDCard.DuplicateWindow, tt.want)
		}
	}
	if DefaultIDCardDuplicateWindow <= 0 {
		t.Error("the ID-card reader's duplicate window is off by default")
	}
}

func containsLine(ps []string, want string) bool {
	for _, p := range ps {
		if strings.Contains(p, want) {
			return true
		}
	}
	return false
}

// TestSecretFilesChecked (issue #11, finding 9): CheckProvisioned refuses a secret file that
// is a device, a FIFO, a directory, too large or open to group and others (with the chmod to
// run), and never blocks or reads without bound.
func TestSecretFilesChecked(t *testing.T) {
	dir := t.TempDir()
	fifo := secretfiletest.FIFO(t)
	open := secretfiletest.File(t, "open", "k3Jd8sPq0ZxV2mW9tY4uB7nR\n", 0o644)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 1<<20), 0o600)
	pub := filepath.Join(dir, "platform.pub")
	os.WriteFile(pub, []byte("6QKm8Wx6ZzcS/rPd3+ihQY8a3TfBqZvX7SkPVSMDrWk=\n"), 0o644)
	user := filepath.Join(dir, "user")
	os.WriteFile(user, []byte("gate-01\n"), 0o644)
	tests := []struct {
		name string
		mod  func(c *Config)
		key  string
		say  string
	}{
		{"dev zero", func(c *Config) { c.Platform.SecretFile = "/dev/zero" }, "platform.secret_file", "character device"},
		{"fifo", func(c *Config) { c.Uplink.PasswordFile = fifo }, "uplink.password_file", "FIFO"},
		{"directory", func(c *Config) { c.Uplink.TLS.KeyFile = dir }, "uplink.tls.key_file", "directory"},
		{"too large", func(c *Config) { c.Platform.SecretFile = big }, "platform.secret_file", "too large"},
		{"0644 secret", func(c *Config) { c.Platform.SecretFile = open }, "platform.secret_file", "chmod 600 " + open},
		{"0644 password", func(c *Config) { c.Uplink.PasswordFile = open }, "uplink.password_file", "chmod 600 " + open},
		{"fifo user name", func(c *Config) { c.Uplink.UsernameFile = fifo }, "uplink.username_file", "FIFO"},
		{"fifo platform key", func(c *Config) { c.Privacy.PlatformKeyFile = fifo }, "privacy.platform_key_file", "FIFO"},
		{"dev zero CA", func(c *Config) { c.Uplink.TLS.CAFile = "/dev/zero" }, "uplink.tls.ca_file", "character device"},
		{"fifo hash key", func(c *Config) { c.Privacy.HashKeyFile = fifo }, "privacy.hash_key_file", "FIFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secretfiletest.Within(t, 5*time.Second, func() {
				c := &Config{Device: Device{ID: "gate-07", Venue: "350582-0001"}}
				tt.mod(c)
				ps := CheckProvisioned(c)
				if len(ps) != 1 || ps[0].Key != tt.key || !strings.Contains(ps[0].Msg, tt.say) {
					t.Errorf("problems %v, want one for %s saying %q", ps, tt.key, tt.say)
				}
			})
		})
	}
	// Public material may be world-readable; a user name is not a secret.
	c := &Config{Device: Device{ID: "gate-07", Venue: "350582-0001"}, Privacy: Privacy{PlatformKeyFile: pub}, Uplink: Uplink{UsernameFile: user}}
	if ps := CheckProvisioned(c); len(ps) != 0 {
		t.Errorf("0644 public key and user name refused: %v", ps)
	}
	// The system's CA bundle is larger than a secret may be, and public.
	bundle := secretfiletest.File(t, "ca.pem", strings.Repeat("-----BEGIN CERTIFICATE-----\n", 8000), 0o644)
	c = &Config{Device: Device{ID: "gate-07", Venue: "350582-0001"}, Uplink: Uplink{TLS: UplinkTLS{CAFile: bundle}}}
	if ps := CheckProvisioned(c); len(ps) != 0 {
		t.Errorf("a 220 KB CA bundle refused: %v", ps)
	}
	// A hash key that does not exist yet is made at the first run.
	c = &Config{Device: Device{ID: "gate-07", Venue: "350582-0001"}, Privacy: Privacy{PlatformKeyFile: pub, HashKeyFile: filepath.Join(dir, "new.key")}}
	if ps := CheckProvisioned(c); len(ps) != 0 {
		t.Errorf("a hash key yet to be made refused: %v", ps)
	}
}

// TestLoadFIFO: a config path that is a FIFO or a device is refused at once, never read
// without bound.
func TestLoadFIFO(t *testing.T) {
	for _, p := range []string{secretfiletest.FIFO(t), "/dev/zero"} {
		secretfiletest.Within(t, 5*time.Second, func() {
			_, err := Load(p)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("Load(%s): %v", p, err)
			}
		})
	}
}
