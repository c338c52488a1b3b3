package face_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/face"
	"github.com/sentinel-edge/sentinel/drivers/camera"
	"github.com/sentinel-edge/sentinel/drivers/facetrack"
	"github.com/sentinel-edge/sentinel/drivers/inputs"
	simcam "github.com/sentinel-edge/sentinel/sim/camera"
	"github.com/sentinel-edge/sentinel/verify"
)

// frames is a stream that plays the frames it is given, then waits for ctx.
type frames struct {
	list []camera.Frame
	err  error // returned at the end instead of waiting
}

func (f *frames) String() string { return "test stream" }
func (f *frames) Run(ctx context.Context, emit func(camera.Frame)) error {
	for _, fr := range f.list {
		emit(fr)
	}
	if f.err != nil {
		return f.err
	}
	<-ctx.Done()
	return nil
}

// script is a watcher that answers each frame with the next step.
type script struct {
	mu       sync.Mutex
	steps    []facetrack.Step
	errs     []error
	seen     [][]byte // the frames as given (the same slices)
	presence []bool
	holds    int
}

func (s *script) Frame(_ time.Time, b []byte) (facetrack.Step, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, b)
	i := len(s.seen) - 1
	var err error
	if i < len(s.errs) {
		err = s.errs[i]
	}
	if i < len(s.steps) {
		return s.steps[i], err
	}
	return facetrack.Step{}, err
}

func (s *script) Hold(time.Time, time.Duration) {
	s.mu.Lock()
	s.holds++
	s.mu.Unlock()
}

func (s *script) Presence(_ time.Time, active bool) {
	s.mu.Lock()
	s.presence = append(s.presence, active)
	s.mu.Unlock()
}

// sensor plays presence changes, then fails or waits.
type sensor struct {
	changes []inputs.Change
	err     error
}

func (s *sensor) String() string { return "test presence" }
func (s *sensor) Run(ctx context.Context, emit func(inputs.Change)) error {
	for _, c := range s.changes {
		emit(c)
	}
	if s.err != nil {
		return s.err
	}
	<-ctx.Done()
	return nil
}

type emitted struct {
	cred verify.Credential
	at   time.Time
}

func runTrigger(t *testing.T, opt face.TriggerOptions, want int) ([]emitted, error) {
	t.Helper()
	tr, err := face.NewTrigger(opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got []emitted
	done := make(chan error, 1)
	go func() {
		done <- tr.Run(ctx, func(c verify.Credential, at time.Time) {
			mu.Lock()
			got = append(got, emitted{c, at})
			n := len(got)
			mu.Unlock()
			if n >= want {
				cancel()
			}
		})
	}()
	if want == 0 {
		time.Sleep(100 * time.Millisecond)
		cancel()
	}
	err = <-done
	mu.Lock()
	defer mu.Unlock()
	return got, err
}

// Each trigger becomes a face credential with the crop, read when its frame was taken; the
// frames are zeroed once seen; the hints reach the screen only when they change; a frame
// the watcher cannot read is skipped, not fatal.
func TestTriggerEmitsFaceCredentials(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	crop := []byte("a face crop")
	fr := func(seq uint64) camera.Frame {
		return camera.Frame{JPEG: bytes.Repeat([]byte{0xAB}, 16), Seq: seq, Time: t0.Add(time.Duration(seq) * 100 * time.Millisecond)}
	}
	w := &script{
		steps: []facetrack.Step{
			{Hint: facetrack.HintNoFace, HintChanged: true},
			{Hint: facetrack.HintNoFace},
			{},
			{Hint: facetrack.HintComeCloser, HintChanged: true, Faces: 1},
			{Hint: facetrack.HintNone, HintChanged: true, Faces: 1, Trigger: &facetrack.Trigger{Mode: facetrack.ModeDetect, JPEG: crop, At: t0.Add(250 * time.Millisecond)}},
		},
		errs: []error{nil, nil, facetrack.ErrDecode},
	}
	var hints []string
	stream := &frames{list: []camera.Frame{fr(1), fr(2), fr(3), fr(4), fr(5)}}
	got, err := runTrigger(t, face.TriggerOptions{Stream: stream, Watcher: w, Log: quiet(),
		OnHint: func(h string) { hints = append(hints, h) }}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].cred.Kind != verify.KindFace || string(got[0].cred.FaceJPEG) != "a face crop" ||
		got[0].cred.IDNumber != "" || !got[0].at.Equal(t0.Add(250*time.Millisecond)) {
		t.Fatalf("emitted %+v", got)
	}
	if strings.Join(hints, ",") != "no_face,come_closer," {
		t.Errorf("hints %q, want no_face, come_closer, then none", hints)
	}
	for i, b := range w.seen {
		if !bytes.Equal(b, make([]byte, 16)) {
			t.Errorf("frame %d not zeroed after the watcher saw it", i+1)
		}
	}
}

// The presence sensor's changes reach the watcher; a sensor that fails stops the trigger
// with an error naming it (the pipeline then stops: without it no one is searched again).
func TestTriggerPresence(t *testing.T) {
	t0 := time.Now()
	w := &script{}
	s := &sensor{changes: []inputs.Change{{Input: "presence", Active: true, At: t0}, {Input: "presence", At: t0.Add(time.Second)}},
		err: errors.New("gpio gone")}
	_, err := runTrigger(t, face.TriggerOptions{Stream: &frames{}, Watcher: w, Presence: s, Log: quiet()}, 1)
	if err == nil || !strings.Contains(err.Error(), "inputs.presence: the presence sensor (test presence) stopped") || !strings.Contains(err.Error(), "gpio gone") {
		t.Fatalf("err %v, want the sensor's", err)
	}
	if len(w.presence) != 2 || !w.presence[0] || w.presence[1] {
		t.Errorf("presence given to the watcher: %v", w.presence)
	}
}

// A stream that ends with an error ends the trigger with it, named.
func TestTriggerStreamError(t *testing.T) {
	_, err := runTrigger(t, face.TriggerOptions{Stream: &frames{err: camera.ErrRunning}, Watcher: &script{}, Log: quiet()}, 1)
	if !errors.Is(err, camera.ErrRunning) || !strings.Contains(err.Error(), "test stream") {
		t.Fatalf("err %v", err)
	}
	if _, err := face.NewTrigger(face.TriggerOptions{}); err == nil {
		t.Error("a trigger without a stream was made")
	}
}

// The real parts in presence mode: the sim camera serves MJPEG over HTTP, the MJPEG driver
// reads it, facetrack's presence watcher takes the best frame after the sensor fires. One
// presence is one search, however long the person stays.
func TestTriggerPresenceOverMJPEG(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "person.jpg")
	pic := image.NewRGBA(image.Rect(0, 0, 320, 240)) // a textured, lit scene: sharp enough to take
	for y := range 240 {
		for x := range 320 {
			v := uint8(80 + (x*7+y*13)%96 + 40*((x/8+y/8)%2))
			pic.Set(x, y, color.RGBA{v, v, v, 255})
		}
	}
	b, err := simcam.EncodeJPEG(pic, 90)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, b, 0o600); err != nil {
		t.Fatal(err)
	}
	sc, err := simcam.ParseScript(strings.NewReader("person.jpg 30\n"), "test", dir)
	if err != nil {
		t.Fatal(err)
	}
	base, stop, err := simcam.NewServer(sc, simcam.Options{FPS: 20}).ServeLoopback()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	cam, err := camera.NewMJPEG(base+simcam.PathStream, camera.StreamOptions{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	w := facetrack.NewPresenceWatcher(facetrack.WatcherOptions{})
	s := &sensor{changes: []inputs.Change{{Input: "presence", Active: true, At: time.Now()}}}
	tr, err := face.NewTrigger(face.TriggerOptions{Stream: cam, Watcher: w, Presence: s, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var got []verify.Credential
	var mu sync.Mutex
	if err := tr.Run(ctx, func(c verify.Credential, _ time.Time) { mu.Lock(); got = append(got, c); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Kind != verify.KindFace || len(got[0].FaceJPEG) == 0 {
		t.Fatalf("%d credentials in 2 s of one presence, want exactly 1", len(got))
	}
	if st := tr.Stats(); st.Frames < 10 || st.Triggers != 1 {
		t.Errorf("stats %+v: want ≥10 frames read, 1 trigger", st)
	}
}
