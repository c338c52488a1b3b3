package config

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

const opsBase = `device: {id: gate-01, venue: "350582-0001", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: /dev/ttyS1}
platform: {url: "http://127.0.0.1:8700"}
barrier: {driver: fake}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
`

func TestOpsDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(opsBase))
	if err != nil {
		t.Fatal(err)
	}
	if c.Screen.Listen != DefaultScreenListen || c.Metrics.Listen != DefaultMetricsListen {
		t.Errorf("listen defaults %q %q", c.Screen.Listen, c.Metrics.Listen)
	}
	// Issue #14: a unit that was only provisioned showed "installed"; installed must be said.
	if c.Install.Status != InstallInstalling || c.Install.StyleLabel != StyleGateAllInOne {
		t.Errorf("install defaults %+v, want status installing", c.Install)
	}
	if c.Status.Heartbeat != DefaultStatusHeartbeat || c.Commands.MaxAge != DefaultCommandMaxAge {
		t.Errorf("heartbeat %s max_age %s", c.Status.Heartbeat, c.Commands.MaxAge)
	}
}

func TestOpsValidation(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	b64, hx := base64.StdEncoding.EncodeToString(pub), hex.EncodeToString(pub)
	tests := []struct {
		name, yaml string
		wantKey    string // "" means valid
	}{
		{"loopback ok", "screen: {listen: 127.0.0.1:9000}\nmetrics: {listen: \"[::1]:9465\"}\n", ""},
		{"off", "screen: {listen: \"off\"}\nmetrics: {listen: \"off\"}\n", ""},
		{"all interfaces refused", "screen: {listen: \"0.0.0.0:8080\"}\n", "screen.listen"},
		{"empty host refused", "metrics: {listen: \":9464\"}\n", "metrics.listen"},
		{"remote allowed", "metrics: {listen: \"0.0.0.0:9464\", allow_remote: true}\n", ""},
		{"not an address", "screen: {listen: \"8080\"}\n", "screen.listen"},
		{"same port", "screen: {listen: 127.0.0.1:9000}\nmetrics: {listen: 127.0.0.1:9000}\n", "metrics.listen"},
		{"install facts", "install: {unit: 某某超市, location: 北门, brand: X, style_label: 闸机一体机, status: installing}\n", ""},
		{"install status", "install: {status: done}\n", "install.status"},
		{"empty key", "commands: {operator_keys: [\"" + b64 + "\", \"\"]}\n", "commands.operator_keys[1]"},
		{"key hex", "commands: {operator_keys: [\"" + hx + "\"]}\n", ""},
		{"dup key", "commands: {operator_keys: [\"" + hx + "\", \"" + b64 + "\"]}\n", "commands.operator_keys[1]"},
		{"bad key", "commands: {operator_keys: [\"c2hvcnQ=\"]}\n", "commands.operator_keys[0]"},
		{"heartbeat", "status: {heartbeat: 100ms}\n", "status.heartbeat"},
		{"unknown key", "screen: {lisen: x}\n", "screen.lisen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(opsBase+tt.yaml))
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantKey+":") {
				t.Fatalf("want a problem naming %s, got %v", tt.wantKey, err)
			}
		})
	}
}
