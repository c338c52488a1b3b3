package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimal = `device: {id: gate-01, venue: "350582-0001", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: /dev/ttyS1}
platform: {url: "http://127.0.0.1:8700"}
barrier: {driver: gpio, pin: GPIO17}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
`

func TestDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Platform.Timeout != 800*time.Millisecond || c.Scanners.QR.Baud != 9600 || c.Barrier.Pulse != 800*time.Millisecond ||
		c.Queue.Path != DefaultQueuePath || c.Uplink.TopicPrefix != "sentinel/v1" || c.Queue.Synchronous != "FULL" ||
		c.Policy.NATMaxAge != 72*time.Hour || len(c.Policy.HealthCodes) != 1 || c.Policy.HealthCodes[0] != "green" || c.Uplink.ClientID == "" {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestExplicitZeroKept(t *testing.T) {
	c, err := Parse("t.yaml", []byte(minimal+"policy: {nat_max_age: 0s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy.NATMaxAge != 0 {
		t.Errorf("nat_max_age: 0s became %s", c.Policy.NATMaxAge)
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings, each must appear in one problem line
	}{
		{"unknown key with line", minimal + "extra: 1\n", []string{"line 7: extra: unknown key"}},
		{"unknown nested key", strings.Replace(minimal, "style: gate_all_in_one", "style: gate_all_in_one, colour: red", 1), []string{"line 1: device.colour: unknown key"}},
		{"bad duration", minimal + "policy: {nat_max_age: 3d}\n", []string{"line 7: policy.nat_max_age: must be a duration", `"3d"`}},
		{"bad int", strings.Replace(minimal, "port: /dev/ttyS1", "port: /dev/ttyS1, baud: fast", 1), []string{"line 3: scanners.qr.baud: must be a whole number"}},
		{"missing id", strings.Replace(minimal, "id: gate-01, ", "", 1), []string{"line 1: device.id: is required"}},
		{"topic chars in id", strings.Replace(minimal, "gate-01", "gate/#", 1), []string{"device.id: must be"}},
		{"bad style", strings.Replace(minimal, "gate_all_in_one", "turnstile", 1), []string{"device.style: must be one of"}},
		{"bad url", strings.Replace(minimal, "http://127.0.0.1:8700", "127.0.0.1:8700", 1), []string{"line 4: platform.url: must be an http"}},
		{"colour", minimal + "policy: {health_codes: [green, purple]}\n", []string{"line 7: policy.health_codes[1]: must be one of"}},
		{"gpio without pin", strings.Replace(minimal, ", pin: GPIO17", "", 1), []string{"line 5: barrier.pin: is required"}},
		{"barrier on reduced gate", strings.Replace(minimal, "gate_all_in_one", "reduced_gate", 1), []string{"barrier.driver: style reduced_gate has no barrier"}},
		{"gate without barrier", strings.Replace(minimal, "barrier: {driver: gpio, pin: GPIO17}\n", "", 1), []string{"barrier.driver: is required for style gate_all_in_one"}},
		{"pulse too long", strings.Replace(minimal, "pin: GPIO17", "pin: GPIO17, pulse: 1m", 1), []string{"barrier.pulse: must be > 0 and at most 10s"}},
		{"broker url", strings.Replace(minimal, "tcp://127.0.0.1:1883", "127.0.0.1", 1), []string{"line 6: uplink.brokers[0]: must be a broker URL"}},
		{"no brokers", strings.Replace(minimal, `["tcp://127.0.0.1:1883"]`, "[]", 1), []string{"uplink.brokers: needs at least one"}},
		{"no scanner", strings.Replace(minimal, "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\n", "", 1), []string{"scanners: at least one scanner"}},
		{"syntax", "device: {id: [\n", []string{"line"}},
		{"empty", "", []string{"config is empty"}},
		{"not a mapping", "- a\n- b\n", []string{"must be a mapping"}},
		{"every problem at once", "device: {id: x}\nbogus: 1\n", []string{"device.venue", "device.style", "bogus: unknown key", "platform.url", "uplink.brokers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.yaml))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("problems lack %q:\n%s", w, err)
				}
			}
			for _, l := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(l, "t.yaml: ") {
					t.Errorf("problem line does not name the file: %q", l)
				}
			}
		})
	}
}

func TestShippedConfigs(t *testing.T) {
	files, _ := filepath.Glob("../../configs/*.yaml")
	if len(files) < 5 {
		t.Fatalf("found %d configs, want demo and one per style", len(files))
	}
	styles := map[string]bool{}
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		styles[c.Device.Style] = true
	}
	for _, s := range Styles {
		if !styles[s] {
			t.Errorf("no config in configs/ for style %s", s)
		}
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("device: {id: [\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse("f.yaml", b)
		if err == nil && (c.Device.ID == "" || len(c.Uplink.Brokers) == 0) {
			t.Fatal("accepted a config without device.id or brokers")
		}
	})
}

// Issue #14, finding 8: an unknown key got the list of known keys, but no suggestion.
func TestUnknownKeyDidYouMean(t *testing.T) {
	tests := []struct{ name, y, want string }{
		{"typo", strings.Replace(minimal, "port: /dev/ttyS1", "prot: /dev/ttyS1", 1), "scanners.qr.prot: unknown key; did you mean port?"},
		{"case", strings.Replace(minimal, "style: gate_all_in_one", "style: gate_all_in_one, Venue: x", 1), "device.Venue: unknown key; did you mean venue?"},
		{"section typo", minimal + "screan: {listen: off}\n", "screan: unknown key; did you mean screen?"},
		{"in the wrong section", minimal + "policy: {offline_policy: deny}\n", "policy.offline_policy: unknown key; did you mean platform.offline_policy?"},
		{"nothing close", minimal + "colour: red\n", "colour: unknown key (known:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.y))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}
