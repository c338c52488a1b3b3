package open

import (
	"errors"
	"fmt"
	"io"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/drivers/facedetect"
	"github.com/sentinel-edge/sentinel/drivers/facetrack"
)

// ErrNoDetector is camera.trigger: detect in a build without the face detector.
var ErrNoDetector = errors.New("camera.trigger: detect needs the pillar build (sentinel-pillar, linked with OpenCV); this binary has no face detector: install the sentinel-pillar package, or set camera.trigger: presence with inputs.presence")

// HasDetector says whether this build has the face detector (the opencv build tag).
const HasDetector = facedetect.Available

// FaceDetector builds the detector of camera.trigger: detect: OpenCV's cascade classifier
// with camera.cascade. It looks for faces down to half of camera.min_face, so that a face
// too far away is seen and told to come closer; with camera.min_face ≥ 64 it detects on
// frames scaled to 320 wide (docs/BENCHMARKS.md: 7× faster, the faces it must find still
// ≥ 32 pixels there). The caller closes it.
func FaceDetector(cfg *config.Config) (facedetect.Detector, error) {
	if !facedetect.Available {
		return nil, ErrNoDetector
	}
	c := cfg.Camera
	opts := facedetect.Options{Cascade: c.Cascade, MinFace: max(24, c.MinFace/2), MaxWidth: 640}
	if c.MinFace >= 64 {
		opts.MaxWidth = 320
	}
	d, err := facedetect.New(opts)
	if err != nil {
		return nil, fmt.Errorf("camera.cascade: %w", err)
	}
	return d, nil
}

// WatcherOptions are the quality gates and the tracking of camera.min_face, camera.rearm
// and camera.retrigger.
func WatcherOptions(cfg *config.Config) facetrack.WatcherOptions {
	c := cfg.Camera
	return facetrack.WatcherOptions{Options: facetrack.Options{
		Gates: facetrack.Gates{MinFace: c.MinFace}, Rearm: c.Rearm, Retrigger: c.Retrigger,
	}}
}

// FaceWatcher builds the watcher of camera.trigger (detect: over the detector; presence:
// the best of a few frames after the sensor fires); nil, nil with camera.trigger none. The
// closer frees the detector (nil for presence).
func FaceWatcher(cfg *config.Config) (*facetrack.Watcher, io.Closer, error) {
	switch cfg.FaceTrigger() {
	case config.CameraTriggerDetect:
		det, err := FaceDetector(cfg)
		if err != nil {
			return nil, nil, err
		}
		w, err := facetrack.NewWatcher(det, WatcherOptions(cfg))
		if err != nil {
			_ = det.Close()
			return nil, nil, fmt.Errorf("camera.trigger: %w", err)
		}
		return w, det, nil
	case config.CameraTriggerPresence:
		return facetrack.NewPresenceWatcher(WatcherOptions(cfg)), nil, nil
	}
	return nil, nil, nil
}
