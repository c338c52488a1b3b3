package selftest

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
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

// A frame the daemon's watcher would skip fails the check, with the watcher's reason: over
// its pixel limit (a 12 MP main stream), or smaller than camera.min_face. The check must not
// claim the detector ran on a frame the daemon never reads.
func TestCheckFaceTriggerFrameSize(t *testing.T) {
	if !open.HasDetector {
		t.Skip("needs the detector (-tags opencv)")
	}
	var small bytes.Buffer
	if err := jpeg.Encode(&small, image.NewGray(image.Rect(0, 0, 1, 1)), nil); err != nil {
		t.Fatal(err)
	}
	var ok, main bytes.Buffer
	if err := jpeg.Encode(&ok, image.NewGray(image.Rect(0, 0, 320, 240)), nil); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&main, image.NewGray(image.Rect(0, 0, 4000, 3000)), nil); err != nil { // a 12 MP main stream
		t.Fatal(err)
	}
	// 9000×9000 as the frame's header declares it (the watcher reads no further).
	declared := func(w, h int) []byte {
		b := bytes.Clone(ok.Bytes())
		i := bytes.Index(b, []byte{0xFF, 0xC0})
		b[i+5], b[i+6], b[i+7], b[i+8] = byte(h>>8), byte(h), byte(w>>8), byte(w)
		return b
	}
	for _, tt := range []struct {
		name  string
		frame []byte
		want  []string
	}{
		{"12 MP", main.Bytes(), []string{"4000x3000", "over the 8.3 MP limit", "skip"}},
		{"81 MP", declared(9000, 9000), []string{"9000x9000", "over the 8.3 MP limit"}},
		{"1x1", small.Bytes(), []string{"1x1", "camera.min_face (80"}},
		{"320x240", ok.Bytes(), []string{"ran on a 320x240 frame"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=f")
				for r.Context().Err() == nil {
					fmt.Fprintf(w, "--f\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n", len(tt.frame), tt.frame)
					w.(http.Flusher).Flush()
					time.Sleep(20 * time.Millisecond)
				}
			}))
			defer srv.Close()
			cfg := &config.Config{Camera: &config.Camera{Driver: "mjpeg", URL: srv.URL, Trigger: config.CameraTriggerDetect,
				MinFace: 80, Timeout: 2 * time.Second, Cascade: facedetect.DefaultCascade}}
			r := checkFaceTrigger(context.Background(), cfg, Options{})
			want := StatusFail
			if tt.name == "320x240" {
				want = StatusPass
			}
			if r.Status != want {
				t.Fatalf("%s frame: %+v, want %s", tt.name, r, want)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.Detail, w) {
					t.Errorf("detail %q lacks %q", r.Detail, w)
				}
			}
			if r.Status == StatusFail && r.Fix == "" {
				t.Error("no fix")
			}
		})
	}
}
