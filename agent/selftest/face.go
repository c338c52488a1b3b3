package selftest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/open"
	"github.com/sentinel-edge/sentinel/drivers/facetrack"
)

// checkFaceTrigger checks the way a face-only passage starts (camera.trigger): for detect,
// that this build has the detector, that it loads camera.cascade, that the camera's frame is
// one the daemon reads (its size: facetrack's CheckSize), and that the detector runs on it
// (how many faces it saw is said, never who); for presence, that the
// sensor is configured (its line is the "input presence" check).
func checkFaceTrigger(ctx context.Context, cfg *config.Config, _ Options) Result {
	switch cfg.FaceTrigger() {
	case config.CameraTriggerNone:
		return notApplicable("camera.trigger none: a face is checked only after a card")
	case config.CameraTriggerPresence:
		return passed("camera.trigger presence: when inputs.presence (%s) fires, the best of a few frames of %s is searched", cfg.Inputs.Presence.Pin, cameraName(cfg))
	}
	det, err := open.FaceDetector(cfg)
	if errors.Is(err, open.ErrNoDetector) {
		return failed(err.Error(), "install the sentinel-pillar package (its binary has the detector), or set camera.trigger: presence and wire inputs.presence")
	}
	if err != nil {
		return failed(err.Error(), "set camera.cascade to an OpenCV cascade file; Debian's opencv-data ships /usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml")
	}
	defer func() { _ = det.Close() }()
	cam, err := open.Camera(cfg, nil)
	if err != nil {
		return failed(fmt.Sprintf("detector loaded, but %v", err), "see the camera check")
	}
	defer func() { _ = cam.Halt() }()
	sctx, cancel := context.WithTimeout(ctx, cfg.Camera.Timeout)
	defer cancel()
	img, err := cam.Snapshot(sctx)
	if err != nil {
		return failed(fmt.Sprintf("detector loaded, but no frame from %s to run it on: %v", cam, err), "see the camera check")
	}
	defer clear(img) // a face, maybe: never kept
	// The daemon's watcher skips a frame over its pixel limit or smaller than camera.min_face:
	// the same question, before decoding (a small JPEG may declare an enormous picture).
	size, err := jpeg.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		return failed(fmt.Sprintf("detector loaded, but the frame of %s does not decode as a JPEG: %v", cam, err), "check the camera's stream format (MJPEG)")
	}
	if err := open.WatcherOptions(cfg).CheckSize(size.Width, size.Height); err != nil {
		return failed(fmt.Sprintf("the daemon would skip every frame of %s: %v", cam, err), facetrack.SkipFix(err))
	}
	pic, err := jpeg.Decode(bytes.NewReader(img))
	if err != nil {
		return failed(fmt.Sprintf("detector loaded, but the frame of %s does not decode as a JPEG: %v", cam, err), "check the camera's stream format (MJPEG)")
	}
	start := time.Now()
	faces, err := det.Detect(facetrack.GrayView(pic))
	took := time.Since(start)
	if err != nil {
		return failed(fmt.Sprintf("the detector failed on a %dx%d frame: %v", pic.Bounds().Dx(), pic.Bounds().Dy(), err), "report it with the unit's log")
	}
	return passed("detector %s ran on a %dx%d frame of %s in %s: %d face(s) in view (not stored); camera.min_face %d",
		det, pic.Bounds().Dx(), pic.Bounds().Dy(), cam, took.Round(time.Millisecond), len(faces), cfg.Camera.MinFace)
}

// cameraName is the camera as the config names it.
func cameraName(cfg *config.Config) string {
	if cfg.Camera.Driver == "v4l2" {
		return cfg.Camera.Device
	}
	return "the camera at camera.url"
}
