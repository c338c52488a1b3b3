package facetrack_test

import (
	"bytes"
	"image"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/facetrack"
)

// present feeds frames of kind at 10 fps for d from start, and returns the triggers.
func present(t *testing.T, w *facetrack.Watcher, start time.Time, d time.Duration, kind int) ([]*facetrack.Trigger, []facetrack.Hint) {
	t.Helper()
	var out []*facetrack.Trigger
	var hints []facetrack.Hint
	for i := 0; time.Duration(i)*100*time.Millisecond < d; i++ {
		st, err := w.Frame(start.Add(time.Duration(i)*100*time.Millisecond), frame(t, face, kind, uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		hints = append(hints, st.Hint)
		if st.Trigger != nil {
			out = append(out, st.Trigger)
		}
	}
	return out, hints
}

func TestPresence(t *testing.T) {
	w := facetrack.NewPresenceWatcher(facetrack.WatcherOptions{Options: facetrack.Options{Rearm: time.Second}})
	if w.Mode() != facetrack.ModePresence {
		t.Fatal(w.Mode())
	}
	// Nobody there: nothing happens, and frames are not even decoded.
	if st, err := w.Frame(t0, []byte("not a jpeg")); err != nil || st.Trigger != nil {
		t.Fatalf("idle: %+v, %v", st, err)
	}
	w.Presence(t0, true)
	tr, _ := present(t, w, t0, 5*time.Second, sharp)
	if len(tr) != 1 {
		t.Fatalf("%d triggers for one presence of 5 s, want 1", len(tr))
	}
	if tr[0].Mode != facetrack.ModePresence || !tr[0].At.Before(t0.Add(300*time.Millisecond)) {
		t.Errorf("trigger %v at %v", tr[0].Mode, tr[0].At)
	}
	// The trigger is a frame as the camera sent it.
	if !bytes.Equal(tr[0].JPEG, frame(t, face, sharp, uint64(tr[0].At.Sub(t0)/(100*time.Millisecond)))) {
		t.Error("the trigger is not one of the frames")
	}
	// A short gap (sensor flicker) is the same person; a gap of Rearm a new one.
	at := t0.Add(5 * time.Second)
	w.Presence(at, false)
	w.Presence(at.Add(500*time.Millisecond), true)
	if tr, _ := present(t, w, at.Add(500*time.Millisecond), time.Second, sharp); len(tr) != 0 {
		t.Errorf("%d triggers after a flicker", len(tr))
	}
	at = at.Add(1500 * time.Millisecond)
	w.Presence(at, false)
	w.Presence(at.Add(time.Second), true)
	if tr, _ := present(t, w, at.Add(time.Second), time.Second, sharp); len(tr) != 1 {
		t.Errorf("%d triggers after the sensor was clear for rearm, want 1", len(tr))
	}
}

// The sharpest of the first frames is taken.
func TestPresenceBestOf(t *testing.T) {
	w := facetrack.NewPresenceWatcher(facetrack.WatcherOptions{Options: facetrack.Options{BestOf: 3}})
	w.Presence(t0, true)
	frames := [][]byte{frame(t, face, soft, 1), frame(t, face, sharp, 2), frame(t, face, soft, 3)}
	var got *facetrack.Trigger
	for i, f := range frames {
		st, err := w.Frame(t0.Add(time.Duration(i)*100*time.Millisecond), f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Trigger != nil {
			got = st.Trigger
		}
	}
	if got == nil || !bytes.Equal(got.JPEG, frames[1]) {
		t.Fatal("the sharpest frame was not taken")
	}
}

func TestPresenceDarkAndRetrigger(t *testing.T) {
	w := facetrack.NewPresenceWatcher(facetrack.WatcherOptions{Options: facetrack.Options{Retrigger: 2 * time.Second,
		Gates: facetrack.Gates{MinBrightness: 100}}})
	w.Presence(t0, true)
	tr, hints := present(t, w, t0, time.Second, dark)
	if len(tr) != 0 || hints[0] != facetrack.HintMoreLight {
		t.Errorf("dark frames: %d triggers, hint %q", len(tr), hints[0])
	}
	// The scene's mean luma is about 110: bright enough for MinBrightness 100 now.
	tr, _ = present(t, w, t0.Add(time.Second), 5*time.Second, blurred)
	if len(tr) != 3 {
		t.Errorf("%d triggers in 5 s with retrigger 2s, want 3", len(tr))
	}
	w.Reset()
	if st, err := w.Frame(t0.Add(time.Hour), frame(t, image.Rectangle{}, sharp, 1)); err != nil || st.Trigger != nil {
		t.Errorf("after Reset the presence is gone: %+v %v", st.Trigger, err)
	}
}
