package config

import (
	"strings"
	"testing"
	"time"
)

const pillarBase = `device: {id: pillar-01, venue: "350582-0001", style: pillar}
platform: {url: "http://127.0.0.1:8700"}
barrier: {driver: gpio, pin: GPIO17}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
scanners:
  idcard: {driver: sam, port: /dev/ttyUSB1}
`

// TestFaceTriggerDefaults (issue #12): the contract keys of face-only passages and their
// defaults.
func TestFaceTriggerDefaults(t *testing.T) {
	c, err := Parse("p.yaml", []byte(pillarBase+"camera: {driver: mjpeg, url: \"http://127.0.0.1:8081/stream\", trigger: detect}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cam := c.Camera
	if c.FaceTrigger() != CameraTriggerDetect || !c.StreamingCamera() || !c.HasCamera() {
		t.Errorf("trigger %q streaming %v", c.FaceTrigger(), c.StreamingCamera())
	}
	if cam.MinFace != 80 || cam.Rearm != 2*time.Second || cam.Retrigger != 0 || cam.Stall != 3*time.Second || cam.MaxFrameBytes != 2<<20 {
		t.Errorf("defaults: %+v", cam)
	}
	if c.Policy.FaceMinScore != 0.80 {
		t.Errorf("policy.face_min_score %v, want 0.80", c.Policy.FaceMinScore)
	}
	c, err = Parse("p.yaml", []byte(pillarBase+"camera: {driver: http, url: \"http://127.0.0.1:8081/s.jpg\"}\npolicy: {face_min_score: 0}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.FaceTrigger() != CameraTriggerNone || c.Policy.FaceMinScore != 0 {
		t.Errorf("trigger %q, face_min_score %v: want none and an explicit 0 kept", c.FaceTrigger(), c.Policy.FaceMinScore)
	}
	if _, err := Parse("p.yaml", []byte(pillarBase+"camera: {driver: mjpeg, url: \"http://127.0.0.1:8081/stream\", trigger: presence}\ninputs:\n  presence: {pin: GPIO22}\n")); err != nil {
		t.Errorf("presence trigger: %v", err)
	}
}

// TestFaceTriggerProblems: each wrong key is named.
func TestFaceTriggerProblems(t *testing.T) {
	const mj = "camera: {driver: mjpeg, url: \"http://127.0.0.1:8081/stream\""
	tests := []struct{ name, yaml, want string }{
		{"unknown trigger", mj + ", trigger: motion}\n", "camera.trigger: must be one of detect, presence, none"},
		{"snapshot camera", "camera: {driver: http, url: \"http://127.0.0.1:8081/s.jpg\", trigger: detect}\n", "camera.trigger: detect needs a streaming camera"},
		{"face not accepted", mj + ", trigger: detect}\npolicy: {credentials: {pillar: [idcard]}}\n", "camera.trigger: detect makes face-only passages, but policy.credentials.pillar leaves out face"},
		{"presence without sensor", mj + ", trigger: presence}\n", "camera.trigger: presence needs inputs.presence"},
		{"sensor without presence", mj + ", trigger: detect}\ninputs:\n  presence: {pin: GPIO22}\n", "inputs.presence: is wired but camera.trigger is detect"},
		{"sensor without camera", "inputs:\n  presence: {pin: GPIO22}\n", "inputs.presence: is wired but there is no camera section"},
		{"presence pin reused", mj + ", trigger: presence}\ninputs:\n  tamper: {pin: GPIO22}\n  presence: {pin: GPIO22}\n", "inputs.presence.pin: GPIO22 is already used by inputs.tamper.pin"},
		{"tiny min_face", mj + ", trigger: detect, min_face: 5}\n", "camera.min_face: must be between 20 and 2000"},
		{"zero rearm", mj + ", trigger: detect, rearm: 0s}\n", "camera.rearm: must be between 100ms and 1m"},
		{"short retrigger", mj + ", trigger: detect, retrigger: 10ms}\n", "camera.retrigger: must be 0s (never) or between 1s and 1h"},
		{"long stall", mj + ", trigger: detect, stall: 5m}\n", "camera.stall: must be between 500ms and 1m"},
		{"huge frames", mj + ", trigger: detect, max_frame_bytes: 1073741824}\n", "camera.max_frame_bytes: must be between"},
		{"explicit zero min_face", mj + ", trigger: detect, min_face: 0}\n", "camera.min_face: must be between 20 and 2000"},
		{"explicit zero stall", mj + ", trigger: detect, stall: 0s}\n", "camera.stall: must be between 500ms and 1m"},
		{"explicit zero frame bound", mj + ", trigger: detect, max_frame_bytes: 0}\n", "camera.max_frame_bytes: must be between"},
		{"empty trigger", mj + ", trigger: \"\"}\n", "camera.trigger: must be one of"},
		{"empty cascade", mj + ", trigger: detect, cascade: \"\"}\n", "camera.cascade: must be an absolute path"},
		{"presence frames beyond a search", mj + ", trigger: presence, max_frame_bytes: 4194304}\ninputs:\n  presence: {pin: GPIO22}\n", "camera.max_frame_bytes: must be at most 2097152 bytes with camera.trigger presence"},
		{"relative cascade", mj + ", trigger: detect, cascade: faces.xml}\n", "camera.cascade: must be an absolute path"},
		{"mjpeg without url", "camera: {driver: mjpeg, trigger: detect}\n", "camera.url: must be an http:// or https:// MJPEG stream URL"},
		{"score above 1", mj + ", trigger: detect}\npolicy: {face_min_score: 80}\n", "policy.face_min_score: must be a score from 0 to 1"},
		{"negative score", mj + ", trigger: detect}\npolicy: {face_min_score: -0.1}\n", "policy.face_min_score: must be a score from 0 to 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(pillarBase+tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
}

// A face-only pillar needs no scanner; without a trigger one is still required.
func TestFaceOnlyNeedsNoScanner(t *testing.T) {
	const noScanner = `device: {id: pillar-01, venue: "350582-0001", style: pillar}
platform: {url: "http://127.0.0.1:8700"}
barrier: {driver: gpio, pin: GPIO17}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
policy: {credentials: {pillar: [face]}}
`
	if _, err := Parse("p.yaml", []byte(noScanner+"camera: {driver: mjpeg, url: \"http://127.0.0.1:8081/stream\", trigger: detect}\n")); err != nil {
		t.Errorf("a face-only pillar: %v", err)
	}
	_, err := Parse("p.yaml", []byte(noScanner+"camera: {driver: mjpeg, url: \"http://127.0.0.1:8081/stream\"}\n"))
	if err == nil || !strings.Contains(err.Error(), "scanners: at least one scanner") {
		t.Errorf("no scanner, no trigger: %v", err)
	}
}
