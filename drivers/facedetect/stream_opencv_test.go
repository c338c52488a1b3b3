//go:build opencv

package facedetect_test

import (
	"context"
	"image"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/camera"
	"github.com/sentinel-edge/sentinel/drivers/facedetect"
	"github.com/sentinel-edge/sentinel/drivers/facetrack"
	simcam "github.com/sentinel-edge/sentinel/sim/camera"
)

// scenes writes the test scenes as JPEG files into dir: empty (a wall), face (the astronaut
// before it), coffee (a non-face picture).
func scenes(t testing.TB, dir string) {
	t.Helper()
	brick := need(t, "brick")
	for name, img := range map[string]image.Image{
		"empty.jpg":  simcam.Scene(brick, 640, 480),
		"face.jpg":   simcam.Person(brick, portrait(t, "astronaut"), 640, 480, 400),
		"coffee.jpg": simcam.Scene(need(t, "coffee"), 640, 480),
	} {
		b, err := simcam.EncodeJPEG(img, 85)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// serveScript plays script (over the scenes) on a loopback sim camera.
func serveScript(t testing.TB, script string) (string, *simcam.Server) {
	t.Helper()
	dir := t.TempDir()
	scenes(t, dir)
	p := filepath.Join(dir, "script.txt")
	if err := os.WriteFile(p, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	sc, err := simcam.LoadScript(p)
	if err != nil {
		t.Fatal(err)
	}
	srv := simcam.NewServer(sc, simcam.Options{FPS: fps(t)})
	base, stop, err := srv.ServeLoopback()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return base + simcam.PathStream, srv
}

// fps is the sim camera's rate: 10 in tests, 30 in benchmarks.
func fps(t testing.TB) int {
	if _, ok := t.(*testing.B); ok {
		return 30
	}
	return 10
}

type watched struct {
	mu       sync.Mutex
	first    time.Time
	triggers []*facetrack.Trigger
	hints    []facetrack.Hint
	errs     int
}

// watch runs the unit's side for d: the MJPEG driver, the OpenCV detector, the tracker.
func watch(t *testing.T, url string, d time.Duration, states *[]bool) *watched {
	t.Helper()
	det := detector(t, facedetect.Options{})
	w, err := facetrack.NewWatcher(det, facetrack.WatcherOptions{Options: facetrack.Options{Rearm: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	cam, err := camera.NewMJPEG(url, camera.StreamOptions{Stall: time.Second, BackoffBase: 10 * time.Millisecond, BackoffCap: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var smu sync.Mutex
	cam.OnState(func(on bool, _ error) { smu.Lock(); *states = append(*states, on); smu.Unlock() })
	out := &watched{}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_ = cam.Run(ctx, func(f camera.Frame) {
		st, err := w.Frame(f.Time, f.JPEG)
		out.mu.Lock()
		defer out.mu.Unlock()
		if out.first.IsZero() {
			out.first = f.Time
		}
		if err != nil {
			out.errs++
			return
		}
		if st.HintChanged {
			out.hints = append(out.hints, st.Hint)
		}
		if st.Trigger != nil {
			out.triggers = append(out.triggers, st.Trigger)
		}
	})
	return out
}

// A person in view for 5 s yields one trigger; leaving for longer than rearm and coming back
// yields a second; a stream dropped while the person stands there recovers without a third.
func TestStreamOneTriggerPerPerson(t *testing.T) {
	url, srv := serveScript(t, "empty.jpg 1\nface.jpg 5\nempty.jpg 2.5\nface.jpg 1\n!drop\nface.jpg 2\nempty.jpg 60\n")
	var states []bool
	got := watch(t, url, 12500*time.Millisecond, &states)
	if got.errs != 0 {
		t.Errorf("%d frames failed", got.errs)
	}
	if len(got.triggers) != 2 {
		t.Fatalf("%d triggers, want 2 (one per person in view)", len(got.triggers))
	}
	// Relative to the first frame (the script's clock starts with the stream): the face is
	// in view from 1 s to 6 s and from 8.5 s.
	for i, want := range []time.Duration{time.Second, 8500 * time.Millisecond} {
		at := got.triggers[i].At.Sub(got.first)
		if at < want-300*time.Millisecond || at > want+1500*time.Millisecond {
			t.Errorf("trigger %d from a frame at %v, want soon after %v", i, at, want)
		}
	}
	d := detector(t, facedetect.Options{})
	for i, tr := range got.triggers {
		img, err := decodeJPEG(tr.JPEG)
		if err != nil {
			t.Fatalf("trigger %d: crop is not a JPEG: %v", i, err)
		}
		if f, err := d.Detect(facetrack.GrayView(img)); err != nil || len(f) != 1 {
			t.Errorf("trigger %d: the crop holds %d faces (%v)", i, len(f), err)
		}
		if tr.Quality.Size < 80 {
			t.Errorf("trigger %d: face of %d px", i, tr.Quality.Size)
		}
	}
	if srv.Connections() < 2 {
		t.Errorf("%d connections: the drop was not recovered", srv.Connections())
	}
	if len(got.hints) == 0 || got.hints[0] != facetrack.HintNoFace {
		t.Errorf("hints %v, want no_face first", got.hints)
	}
}

// An empty scene and a picture without a face yield no trigger.
func TestStreamNoFace(t *testing.T) {
	url, _ := serveScript(t, "empty.jpg 1.5\ncoffee.jpg 2\nempty.jpg 60\n")
	var states []bool
	got := watch(t, url, 4*time.Second, &states)
	if len(got.triggers) != 0 {
		t.Errorf("%d triggers without a face", len(got.triggers))
	}
	if len(got.hints) != 1 || got.hints[0] != facetrack.HintNoFace {
		t.Errorf("hints %v, want no_face only", got.hints)
	}
}
