package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// base has no platform or policy section: each case adds its own.
const base = `device: {id: gate-01, venue: "350582-0001", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: /dev/ttyS1}
barrier: {driver: gpio, pin: GPIO17}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
`

func TestPlatformDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(base+`platform: {url: "http://127.0.0.1:8700"}`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Platform
	if p.OfflinePolicy != "deny" || p.CacheTTL != 12*time.Hour || p.Signing != "hmac-sha256" || p.Budget != time.Second ||
		p.ProbeInterval != 10*time.Second || p.Mapping != "" || !c.Policy.RequireIdentityMatch || c.Policy.MinVaccineDoses != 0 {
		t.Errorf("defaults: %+v %+v", p, c.Policy)
	}
	c, err = Parse("t.yaml", []byte(base+`platform: {url: "http://127.0.0.1:8700", timeout: 2s}`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Platform.Budget != 2*time.Second+200*time.Millisecond {
		t.Errorf("budget %s for a 2s timeout", c.Platform.Budget)
	}
}

func TestPlatformProblems(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	ref, err := os.ReadFile("../../configs/mappings/reference.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(broken, []byte(strings.Replace(string(ref), "path: data.health_code", "path: data.colour", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	good, _ := filepath.Abs("../../configs/mappings/province-gateway.yaml")
	tests := []struct {
		name, platform, policy string
		wantKey, wantMsg       string
	}{
		{"offline policy", `offline_policy: allow_all`, ``, "platform.offline_policy", "deny, allow_cached, allow_and_flag"},
		{"signing", `signing: md5`, ``, "platform.signing", "hmac-sha256, sm3-hmac"},
		{"secret without key", `secret_file: /etc/sentinel/secret`, ``, "platform.app_key", "is required"},
		{"key without secret", `app_key: unit-7`, ``, "platform.secret_file", "unsigned"},
		{"mapping missing", `mapping: ` + filepath.Join(dir, "none.yaml"), ``, "platform.mapping", "no such file"},
		{"mapping points at nothing", `mapping: ` + broken, ``, "platform.mapping", `"data.colour" points at nothing`},
		{"budget below timeout", `budget: 100ms`, ``, "platform.budget", "at least platform.timeout"},
		{"cache ttl", `cache_ttl: -1h`, ``, "platform.cache_ttl", "> 0"},
		{"probe interval", `probe_interval: 1ms`, ``, "platform.probe_interval", "between"},
		{"doses", ``, `min_vaccine_doses: -1`, "policy.min_vaccine_doses", "between 0"},
		{"credentials style", ``, `credentials: {turnstile: [qr]}`, "policy.credentials.turnstile", "not a device style"},
		{"credentials kind", ``, `credentials: {pillar: [iris]}`, "policy.credentials.pillar[0]", "qr, idcard, face"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base + "platform:\n  url: \"http://127.0.0.1:8700\"\n"
			if tt.platform != "" {
				cfg += "  " + tt.platform + "\n"
			}
			if tt.policy != "" {
				cfg += "policy:\n  " + tt.policy + "\n"
			}
			_, err := Parse("t.yaml", []byte(cfg))
			if err == nil {
				t.Fatal("accepted")
			}
			var line string
			for _, l := range strings.Split(err.Error(), "\n") {
				if strings.Contains(l, tt.wantKey+": ") {
					line = l
				}
			}
			if line == "" || !strings.Contains(line, tt.wantMsg) {
				t.Errorf("no problem naming %s with %q in:\n%v", tt.wantKey, tt.wantMsg, err)
			}
		})
	}
	c, err := Parse("t.yaml", []byte(base+"platform:\n  url: \"http://127.0.0.1:8700\"\n  mapping: "+good+
		"\n  offline_policy: allow_cached\n  secret_file: /s\n  app_key: k\n  signing: sm3-hmac\npolicy:\n  min_vaccine_doses: 2\n  require_identity_match: false\n  credentials: {gate_all_in_one: [qr, idcard]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy.RequireIdentityMatch || strings.Join(c.AcceptedCredentials(), ",") != "qr,idcard" {
		t.Errorf("policy %+v", c.Policy)
	}
}

// Found by an adversarial round (2026-12-02): `check` passed platform.url
// "http://127.0.0.1:99999" (only a call found the port invalid), and a refused URL was echoed
// with its password.
func TestPlatformURLPortAndPassword(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:99999", "http://127.0.0.1:0", "https://h:65536/x"} {
		_, err := Parse("t.yaml", []byte(base+`platform: {url: "`+u+`"}`+"\n"))
		if err == nil || !strings.Contains(err.Error(), "platform.url") || !strings.Contains(err.Error(), "port") {
			t.Errorf("%s: %v, want platform.url's port refused", u, err)
		}
	}
	if _, err := Parse("t.yaml", []byte(base+`platform: {url: "http://127.0.0.1:65535"}`+"\n")); err != nil {
		t.Errorf("port 65535: %v", err)
	}
	for _, u := range []string{"ftp://user:s3cr3tpw@h/x", "http://user:s3cr3tpw@:99999", "http://user:s3cr3tpw@h:99999"} {
		_, err := Parse("t.yaml", []byte(base+`platform: {url: "`+u+`"}`+"\n"))
		if err == nil || strings.Contains(err.Error(), "s3cr3tpw") {
			t.Errorf("%s: %v, want it refused without the password", u, err)
		}
	}
}

// The same for the broker list and the camera's URL.
func TestBrokerAndCameraURLPorts(t *testing.T) {
	_, err := Parse("t.yaml", []byte(strings.Replace(base, "tcp://127.0.0.1:1883", "tcp://user:s3cr3tpw@127.0.0.1:99999", 1)+`platform: {url: "http://127.0.0.1:8700"}`+"\n"))
	if err == nil || !strings.Contains(err.Error(), "uplink.brokers[0]") || strings.Contains(err.Error(), "s3cr3tpw") {
		t.Errorf("broker port 99999: %v, want uplink.brokers[0] refused without the password", err)
	}
	_, err = Parse("t.yaml", []byte(base+`platform: {url: "http://127.0.0.1:8700"}`+"\n"+`camera: {driver: mjpeg, url: "http://127.0.0.1:70000/stream"}`+"\n"))
	if err == nil || !strings.Contains(err.Error(), "camera.url") {
		t.Errorf("camera port 70000: %v, want camera.url refused", err)
	}
}
