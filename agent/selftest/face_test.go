package selftest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/open"
	"github.com/sentinel-edge/sentinel/drivers/facedetect"
)

// The face trigger's check says what it verified: N/A without a trigger, the sensor for
// presence; for detect, a build without the detector fails naming the pillar build (what
// `run` refuses too), and one with it loads the cascade and runs it on a camera frame.
func TestCheckFaceTrigger(t *testing.T) {
	base := func(trigger string) *config.Config {
		return &config.Config{Camera: &config.Camera{Driver: "mjpeg", URL: "http://127.0.0.1:1/stream", Trigger: trigger,
			MinFace: 80, Timeout: 300 * time.Millisecond, Cascade: facedetect.DefaultCascade},
			Inputs: config.Inputs{Presence: &config.Input{Pin: "GPIO22"}}}
	}
	if r := checkFaceTrigger(context.Background(), base(config.CameraTriggerNone), Options{}); r.Status != StatusNotApplicable {
		t.Errorf("none: %+v", r)
	}
	if r := checkFaceTrigger(context.Background(), base(config.CameraTriggerPresence), Options{}); r.Status != StatusPass || !strings.Contains(r.Detail, "GPIO22") {
		t.Errorf("presence: %+v", r)
	}
	r := checkFaceTrigger(context.Background(), base(config.CameraTriggerDetect), Options{})
	if !open.HasDetector {
		if r.Status != StatusFail || !strings.Contains(r.Detail, "pillar build") || !strings.Contains(r.Fix, "camera.trigger: presence") {
			t.Errorf("detect without the detector: %+v", r)
		}
		return
	}
	// With the detector: the camera at port 1 gives no frame, and the check says so.
	if r.Status != StatusFail || !strings.Contains(r.Detail, "detector loaded, but no frame") {
		t.Errorf("detect, no camera: %+v", r)
	}
	bad := base(config.CameraTriggerDetect)
	bad.Camera.Cascade = "/etc/hostname"
	if r := checkFaceTrigger(context.Background(), bad, Options{}); r.Status != StatusFail || !strings.Contains(r.Detail, "camera.cascade") {
		t.Errorf("a file that is no cascade: %+v", r)
	}
}
