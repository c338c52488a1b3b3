package ops

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/lane"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/screen"
)

func parseCfg(t *testing.T, y string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const screenBase = `platform: {url: "http://127.0.0.1:1"%OFFLINE%}
queue: {path: /tmp/q.db}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
`

// Issue #14, finding 6: the pillar's idle prompt asked for a health code although face and
// card are its credentials. The screen asks for what the unit's readers and policy take.
func TestScreenAccepts(t *testing.T) {
	tests := []struct {
		name, y string
		want    []string
	}{
		{"gate, QR only", `device: {id: g1, venue: v1, style: gate_all_in_one}
scanners: {qr: {driver: serial, port: /dev/ttyS1}}
barrier: {driver: fake}
`, []string{"qr"}},
		{"gate with card and camera", `device: {id: g1, venue: v1, style: gate_all_in_one}
scanners: {qr: {driver: serial, port: /dev/ttyS1}, idcard: {driver: sam, port: /dev/ttyUSB0}}
camera: {driver: http, url: "http://127.0.0.1:1/s.jpg"}
barrier: {driver: fake}
`, []string{"qr", "face"}},
		{"pillar: card and face, no QR in its policy", `device: {id: p1, venue: v1, style: pillar}
scanners: {qr: {driver: serial, port: /dev/ttyS1}, idcard: {driver: sam, port: /dev/ttyUSB0}}
camera: {driver: http, url: "http://127.0.0.1:1/s.jpg"}
barrier: {driver: fake}
policy: {credentials: {pillar: [idcard, face]}}
`, []string{"face"}},
		{"pillar with every kind: card and face first", `device: {id: p1, venue: v1, style: pillar}
scanners: {qr: {driver: serial, port: /dev/ttyS1}, idcard: {driver: sam, port: /dev/ttyUSB0}}
camera: {driver: http, url: "http://127.0.0.1:1/s.jpg"}
barrier: {driver: fake}
`, []string{"face", "qr"}},
		{"handheld: card without camera", `device: {id: h1, venue: v1, style: handheld}
scanners: {qr: {driver: serial, port: /dev/ttyS1}, idcard: {driver: sam, port: /dev/ttyUSB0}}
policy: {credentials: {handheld: [idcard]}}
`, []string{"idcard"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parseCfg(t, tt.y+strings.Replace(screenBase, "%OFFLINE%", "", 1))
			if got := screenAccepts(cfg); !slices.Equal(got, tt.want) {
				t.Errorf("screenAccepts = %v, want %v", got, tt.want)
			}
		})
	}
}

// Issue #14, finding 6: tamper was not shown at all, the fire alarm only as status text, and
// the offline policy never reached the screen. The unit view carries them.
func TestUnitView(t *testing.T) {
	cfg := parseCfg(t, `device: {id: g1, venue: v1, style: gate_all_in_one}
scanners: {qr: {driver: serial, port: /dev/ttyS1}}
barrier: {driver: fake}
`+strings.Replace(screenBase, "%OFFLINE%", ", offline_policy: allow_cached", 1))
	st := record.Status{Venue: "v1", Device: "g1", Platform: record.PlatformOffline, Mode: "always_open", FireAlarm: record.FireAlarmActive}
	u := unitView(st, lane.State{GateMode: "always_open", FireAlarm: record.FireAlarmActive, Tamper: true}, cfg)
	if u.FireAlarm != screen.FireAlarmActive || !u.Tamper || !u.Barrier || u.OfflinePolicy != "allow_cached" || !slices.Equal(u.Accepts, []string{"qr"}) {
		t.Errorf("unit view %+v", u)
	}
	cfg.Device.Style = config.StyleHandheld
	if u := unitView(st, lane.State{}, cfg); u.Barrier || u.Tamper || u.FireAlarm != "" {
		t.Errorf("a quiet handheld: %+v", u)
	}
}

func TestVerdictViewFace(t *testing.T) {
	v := verdictView(record.Passage{Verdict: "deny", Reason: "identity_mismatch", Credential: "face", Subject: record.Subject{ID: "3505**********1231"}}, 0)
	if v.Credential != "face" || !strings.Contains(v.Text.EN, "face does not match") || v.Staff.EN == "" || v.SubjectID != "3505**********1231" {
		t.Errorf("face mismatch on screen: %+v", v)
	}
}

// Issue #14, finding 6: each style template's idle screen asks for what its unit takes; the
// pillar's are card and face.
func TestTemplatesIdlePrompt(t *testing.T) {
	paths, _ := filepath.Glob("../../configs/*.yaml")
	if len(paths) < 4 {
		t.Fatalf("templates: %v", paths)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		cfg := parseCfg(t, string(b))
		if cfg.Device.Style == config.StylePillar && slices.Contains(screenAccepts(cfg), "qr") {
			t.Errorf("%s: the pillar asks for a health code; its credentials are card and face", p)
		}
		if len(screenAccepts(cfg)) == 0 {
			t.Errorf("%s: the idle screen asks for nothing", p)
		}
	}
}
