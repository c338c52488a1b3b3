package facetrack_test

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/facetrack"
)

// Kinds of synthetic face.
const (
	sharp = iota
	soft  // sharp enough, less than sharp
	blurred
	dark
)

// frame draws a 320×240 scene with a face-like patch at box (none when box is empty) and
// encodes it as JPEG. A sharp face is fine noise; a blurred one a smooth ramp; a dark one
// dim noise.
func frame(t testing.TB, box image.Rectangle, kind int, seed uint64, more ...image.Rectangle) []byte {
	t.Helper()
	key := fmt.Sprint(box, kind, seed%4, more)
	framesMu.Lock()
	defer framesMu.Unlock()
	if b, ok := frames[key]; ok {
		return b
	}
	img := image.NewGray(image.Rect(0, 0, 320, 240))
	rng := rand.New(rand.NewPCG(seed%4, 7))
	for i := range img.Pix {
		img.Pix[i] = 110 + uint8(rng.IntN(6))
	}
	for _, b := range append([]image.Rectangle{box}, more...) {
		drawFace(img, b, kind, rng)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	frames[key] = buf.Bytes()
	return buf.Bytes()
}

// frames caches the synthetic frames (encoding them is most of these tests' time).
var (
	framesMu sync.Mutex
	frames   = map[string][]byte{}
)

func drawFace(img *image.Gray, box image.Rectangle, kind int, rng *rand.Rand) {
	for y := box.Min.Y; y < box.Max.Y; y++ {
		for x := box.Min.X; x < box.Max.X; x++ {
			var v uint8
			switch kind {
			case sharp:
				v = 40 + uint8(rng.IntN(180))
			case soft:
				v = 100 + uint8(rng.IntN(50))
			case blurred:
				v = 90 + uint8((x-box.Min.X)*60/max(box.Dx(), 1))
			case dark:
				v = uint8(rng.IntN(30))
			}
			img.SetGray(x, y, grayOf(v))
		}
	}
}

// fakeDet returns, for each frame, the boxes the test set.
type fakeDet struct {
	boxes []image.Rectangle
	err   error
	calls int
}

func (d *fakeDet) Detect(*image.Gray) ([]image.Rectangle, error) {
	d.calls++
	return d.boxes, d.err
}

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// face is a box that passes the default gates in a 320×240 frame.
var face = image.Rect(110, 60, 210, 160)

// standing feeds a face standing for d at fps (the box jittering a little) from start, and
// returns the triggers.
func standing(t *testing.T, w *facetrack.Watcher, det *fakeDet, start time.Time, d time.Duration, fps int, box image.Rectangle) []*facetrack.Trigger {
	t.Helper()
	var out []*facetrack.Trigger
	step := time.Second / time.Duration(fps)
	for i := 0; time.Duration(i)*step < d; i++ {
		j := image.Pt(i%3-1, (i/3)%3-1)
		det.boxes = []image.Rectangle{box.Add(j)}
		st, err := w.Frame(start.Add(time.Duration(i)*step), frame(t, box.Add(j), sharp, uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		if st.Trigger != nil {
			out = append(out, st.Trigger)
		}
	}
	return out
}

func empty(t *testing.T, w *facetrack.Watcher, det *fakeDet, start time.Time, d time.Duration, fps int) []facetrack.Step {
	t.Helper()
	var out []facetrack.Step
	step := time.Second / time.Duration(fps)
	for i := 0; time.Duration(i)*step < d; i++ {
		det.boxes = nil
		st, err := w.Frame(start.Add(time.Duration(i)*step), frame(t, image.Rectangle{}, sharp, uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, st)
	}
	return out
}

func newWatcher(t *testing.T, o facetrack.Options) (*facetrack.Watcher, *fakeDet) {
	t.Helper()
	det := &fakeDet{}
	w, err := facetrack.NewWatcher(det, facetrack.WatcherOptions{Options: o})
	if err != nil {
		t.Fatal(err)
	}
	return w, det
}

func TestStandingTriggersOnce(t *testing.T) {
	w, det := newWatcher(t, facetrack.Options{})
	empty(t, w, det, t0, time.Second, 10)
	tr := standing(t, w, det, t0.Add(time.Second), 5*time.Second, 10, face)
	if len(tr) != 1 {
		t.Fatalf("%d triggers for a person standing 5 s, want 1", len(tr))
	}
	// Taken within the best-of window of the first good frame (3 frames at 10 fps).
	if d := tr[0].At.Sub(t0.Add(time.Second)); d > 300*time.Millisecond {
		t.Errorf("the chosen frame is %v after the face appeared", d)
	}
	img, err := jpeg.Decode(bytes.NewReader(tr[0].JPEG))
	if err != nil {
		t.Fatalf("the crop is not a JPEG: %v", err)
	}
	// The crop is the face with a 30% margin on every side, clipped to the frame.
	if b := img.Bounds(); b.Dx() < 150 || b.Dx() > 170 || b.Dy() < 150 || b.Dy() > 170 {
		t.Errorf("crop %v, want about 160×160 (a 100-pixel face with 30%% margins)", b)
	}
	if tr[0].Mode != facetrack.ModeDetect || tr[0].Quality.Size < 98 {
		t.Errorf("trigger %+v", tr[0])
	}
	if st := w.Stats(); st.Triggers != 1 || st.Frames != 60 {
		t.Errorf("stats %+v", st)
	}
}

func TestLeaveAndReturn(t *testing.T) {
	tests := []struct {
		name  string
		away  time.Duration
		want  int
		rearm time.Duration
	}{
		{"away shorter than rearm: the same person", 1500 * time.Millisecond, 1, 2 * time.Second},
		{"away for rearm: a new passage", 2 * time.Second, 2, 2 * time.Second},
		{"short rearm", 600 * time.Millisecond, 2, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, det := newWatcher(t, facetrack.Options{Rearm: tt.rearm})
			n := len(standing(t, w, det, t0, 2*time.Second, 10, face))
			empty(t, w, det, t0.Add(2*time.Second), tt.away, 10)
			n += len(standing(t, w, det, t0.Add(2*time.Second+tt.away), 2*time.Second, 10, face))
			if n != tt.want {
				t.Errorf("%d triggers, want %d", n, tt.want)
			}
		})
	}
}

func TestRetrigger(t *testing.T) {
	w, det := newWatcher(t, facetrack.Options{Retrigger: 2 * time.Second})
	tr := standing(t, w, det, t0, 5*time.Second, 10, face)
	if len(tr) != 3 {
		t.Fatalf("%d triggers in 5 s with retrigger 2s, want 3", len(tr))
	}
	if d := tr[1].At.Sub(tr[0].At); d < 2*time.Second {
		t.Errorf("retriggered after %v", d)
	}
}

func TestBestOfFirstFrames(t *testing.T) {
	w, det := newWatcher(t, facetrack.Options{BestOf: 3, BestWithin: time.Second})
	// Three good frames, the second the sharpest: it is the one taken.
	kinds := []int{soft, sharp, soft}
	var got *facetrack.Trigger
	for i, k := range kinds {
		det.boxes = []image.Rectangle{face}
		st, err := w.Frame(t0.Add(time.Duration(i)*100*time.Millisecond), frame(t, face, k, 1))
		if err != nil {
			t.Fatal(err)
		}
		if st.Trigger != nil {
			got = st.Trigger
			if i != 2 {
				t.Errorf("triggered at frame %d, want after 3", i)
			}
		}
	}
	if got == nil || !got.At.Equal(t0.Add(100*time.Millisecond)) {
		t.Fatalf("no trigger, or not of the second frame")
	}
}

// One good frame, then only bad ones: the good one is taken when BestWithin has passed.
func TestBestWithin(t *testing.T) {
	w, det := newWatcher(t, facetrack.Options{BestOf: 5, BestWithin: 300 * time.Millisecond})
	det.boxes = []image.Rectangle{face}
	kinds := []int{sharp, blurred, blurred, blurred, blurred}
	for i, k := range kinds {
		st, err := w.Frame(t0.Add(time.Duration(i)*100*time.Millisecond), frame(t, face, k, 1))
		if err != nil {
			t.Fatal(err)
		}
		if st.Trigger != nil {
			if i != 3 || !st.Trigger.At.Equal(t0) {
				t.Errorf("trigger at frame %d of the frame at %v", i, st.Trigger.At)
			}
			return
		}
	}
	t.Fatal("no trigger")
}

func TestHints(t *testing.T) {
	w, det := newWatcher(t, facetrack.Options{Gates: facetrack.Gates{MinFace: 80}})
	steps := []struct {
		name  string
		box   image.Rectangle
		kind  int
		want  facetrack.Hint
		trig  bool
		faces int
	}{
		{"nobody", image.Rectangle{}, sharp, facetrack.HintNoFace, false, 0},
		{"far away", image.Rect(140, 90, 190, 140), sharp, facetrack.HintComeCloser, false, 1},
		{"cut by the edge", image.Rect(0, 60, 100, 160), sharp, facetrack.HintLookAtCamera, false, 1},
		{"in the dark", face, dark, facetrack.HintMoreLight, false, 1},
		{"moving", face, blurred, facetrack.HintHoldStill, false, 1},
		{"good", face, sharp, facetrack.HintNone, false, 1},
		{"good", face, sharp, facetrack.HintNone, false, 1},
		{"good: taken", face, sharp, facetrack.HintNone, true, 1},
		{"still there", face, blurred, facetrack.HintNone, false, 1},
		{"gone", image.Rectangle{}, sharp, facetrack.HintNoFace, false, 0},
	}
	last := facetrack.HintNone
	for i, s := range steps {
		det.boxes = nil
		if !s.box.Empty() {
			det.boxes = []image.Rectangle{s.box}
		}
		st, err := w.Frame(t0.Add(time.Duration(i)*100*time.Millisecond), frame(t, s.box, s.kind, uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		if st.Hint != s.want || (st.Trigger != nil) != s.trig || st.Faces != s.faces {
			t.Errorf("step %d %s: hint %q trigger %v faces %d; want %q %v %d", i, s.name, st.Hint, st.Trigger != nil, st.Faces, s.want, s.trig, s.faces)
		}
		if st.HintChanged != (st.Hint != last) {
			t.Errorf("step %d: HintChanged %v", i, st.HintChanged)
		}
		last = st.Hint
	}
}

// Only the largest face (the person at the unit) triggers; a face behind never does.
func TestLargestFaceOnly(t *testing.T) {
	w, det := newWatcher(t, facetrack.Options{Gates: facetrack.Gates{MinFace: 40}})
	small := image.Rect(250, 20, 300, 70)
	n := 0
	for i := range 40 {
		at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		img := frame(t, face, sharp, uint64(i), small)
		det.boxes = []image.Rectangle{face, small}
		if i < 10 {
			det.boxes = []image.Rectangle{small} // alone at first: it is the subject then
		}
		st, err := w.Frame(at, img)
		if err != nil {
			t.Fatal(err)
		}
		if st.Trigger != nil {
			n++
			if i >= 10 && st.Trigger.Box != face {
				t.Errorf("frame %d: the face behind triggered", i)
			}
		}
	}
	// The small face alone triggers once (frames 0-9, it passes MinFace 40); then the large
	// one once; the small one, still tracked, never again.
	if n != 2 {
		t.Errorf("%d triggers, want 2", n)
	}
}

func TestReset(t *testing.T) {
	w, det := newWatcher(t, facetrack.Options{})
	n := len(standing(t, w, det, t0, time.Second, 10, face))
	w.Reset()
	n += len(standing(t, w, det, t0.Add(time.Second), time.Second, 10, face))
	if n != 2 {
		t.Errorf("%d triggers, want 2 (Reset forgets the face in view)", n)
	}
}

// A passage made by card at the unit holds the face trigger: the person in view (whose face
// is being collected, or who looks up only after the card) is not searched too; after they
// left for rearm, the next person is.
func TestHold(t *testing.T) {
	w, det := newWatcher(t, facetrack.Options{})
	// In view, the card read after the first frame: no search.
	standing(t, w, det, t0, 100*time.Millisecond, 10, face)
	w.Hold(t0.Add(100*time.Millisecond), 2*time.Second)
	n := len(standing(t, w, det, t0.Add(100*time.Millisecond), 3*time.Second, 10, face))
	// Gone for rearm, then a face first seen within the hold after a second card read.
	empty(t, w, det, t0.Add(3100*time.Millisecond), 2500*time.Millisecond, 10)
	w.Hold(t0.Add(5600*time.Millisecond), 2*time.Second)
	n += len(standing(t, w, det, t0.Add(5700*time.Millisecond), 2*time.Second, 10, face))
	if n != 0 {
		t.Fatalf("%d searches of people who passed by card, want 0", n)
	}
	// Later: someone new (gone for rearm, back after the hold) is searched.
	empty(t, w, det, t0.Add(7700*time.Millisecond), 2500*time.Millisecond, 10)
	if got := len(standing(t, w, det, t0.Add(10200*time.Millisecond), 2*time.Second, 10, face)); got != 1 {
		t.Errorf("%d searches after the hold, want 1", got)
	}
}

func TestBadFrames(t *testing.T) {
	w, det := newWatcher(t, facetrack.Options{})
	good := frame(t, face, sharp, 1)
	// A JPEG header that declares 60000×60000 pixels: refused before decoding.
	huge := append([]byte(nil), good...)
	if i := bytes.Index(huge, []byte{0xFF, 0xC0}); i > 0 {
		huge[i+5], huge[i+6], huge[i+7], huge[i+8] = 0xEA, 0x60, 0xEA, 0x60
	} else {
		t.Fatal("no SOF0 in the test JPEG")
	}
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"not a JPEG", []byte("GIF89a"), facetrack.ErrDecode},
		{"truncated", good[:len(good)/2], facetrack.ErrDecode},
		{"empty", nil, facetrack.ErrDecode},
		{"enormous", huge, facetrack.ErrTooBig},
	}
	for _, tt := range tests {
		det.boxes = []image.Rectangle{face}
		if _, err := w.Frame(t0, tt.frame); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	// 4000×3000 (a 12 MP main stream) is over the 4K limit; 60×60 is under min_face 80.
	sized := func(wd, ht int) []byte {
		b := append([]byte(nil), good...)
		i := bytes.Index(b, []byte{0xFF, 0xC0})
		b[i+5], b[i+6], b[i+7], b[i+8] = byte(ht>>8), byte(ht), byte(wd>>8), byte(wd)
		return b
	}
	for _, tt := range []struct {
		w, h int
		want error
		text string
	}{
		{4000, 3000, facetrack.ErrTooBig, "4000x3000 is over the 8.3 MP limit"},
		{60, 60, facetrack.ErrTooSmall, "60x60 is smaller than camera.min_face (80"},
	} {
		_, err := w.Frame(t0, sized(tt.w, tt.h))
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%dx%d: %v, want %q", tt.w, tt.h, err, tt.text)
		}
		if e := (facetrack.WatcherOptions{}).CheckSize(tt.w, tt.h); !errors.Is(e, tt.want) {
			t.Errorf("CheckSize(%d, %d) = %v, want %v", tt.w, tt.h, e, tt.want)
		}
	}
	if err := (facetrack.WatcherOptions{}).CheckSize(3840, 2160); err != nil {
		t.Errorf("CheckSize(3840, 2160): %v, want the limit itself to pass", err)
	}
	if st := w.Stats(); st.Undecodable != 6 || det.calls != 0 {
		t.Errorf("stats %+v, detector called %d times", st, det.calls)
	}
	det.err = errors.New("opencv failed")
	if _, err := w.Frame(t0, good); err == nil || w.Stats().DetectErrors != 1 {
		t.Errorf("detector error: %v, stats %+v", err, w.Stats())
	}
	if _, err := facetrack.NewWatcher(nil, facetrack.WatcherOptions{}); !errors.Is(err, facetrack.ErrNoDetector) {
		t.Errorf("no detector: %v", err)
	}
}

// A large face is cropped and scaled down to MaxCrop.
func TestCropScaledDown(t *testing.T) {
	w, det := newWatcher(t, facetrack.Options{MaxCrop: 100, Margin: 0.1})
	big := image.Rect(60, 30, 260, 210)
	tr := standing(t, w, det, t0, time.Second, 10, big)
	if len(tr) != 1 {
		t.Fatalf("%d triggers", len(tr))
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(tr[0].JPEG))
	if err != nil || max(cfg.Width, cfg.Height) != 100 {
		t.Errorf("crop %d×%d (%v), want at most 100 on its longer side", cfg.Width, cfg.Height, err)
	}
}
