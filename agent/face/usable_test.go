package face_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/face"
	"github.com/sentinel-edge/sentinel/drivers/camera/cameratest"
	"github.com/sentinel-edge/sentinel/drivers/facetrack"
	"github.com/sentinel-edge/sentinel/verify"
)

// syncBuf is a log sink safe for the stream's goroutine.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// byFrame is a watcher that skips the frames whose first byte is 'X' with err.
type byFrame struct{ err error }

func (w byFrame) Frame(_ time.Time, b []byte) (facetrack.Step, error) {
	if len(b) > 0 && b[0] == 'X' {
		return facetrack.Step{}, w.err
	}
	return facetrack.Step{}, nil
}
func (byFrame) Presence(time.Time, bool)      {}
func (byFrame) Hold(time.Time, time.Duration) {}

// Frames that arrive but are all skipped for camera.stall (a 12 MP main stream over the
// watcher's limit) make the camera offline, with why and what to do; a frame read again
// makes it online. Each run of skipped frames is one WARN, not one a minute (or none).
func TestTriggerEverySkippedFrameIsOffline(t *testing.T) {
	tooBig := (facetrack.WatcherOptions{}).CheckSize(4000, 3000)
	if !errors.Is(tooBig, facetrack.ErrTooBig) {
		t.Fatalf("CheckSize(4000, 3000) = %v", tooBig)
	}
	st := cameratest.NewStream()
	var mu sync.Mutex
	var states []string
	var logs syncBuf
	tr, err := face.NewTrigger(face.TriggerOptions{Stream: st, Watcher: byFrame{tooBig}, Stall: time.Second,
		Log: slog.New(slog.NewTextHandler(&logs, nil)),
		OnState: func(online bool, err error) {
			mu.Lock()
			defer mu.Unlock()
			states = append(states, fmt.Sprintf("%v %v", online, err))
		}})
	if err != nil {
		t.Fatal(err)
	}
	st.OnState(tr.StreamState)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx, func(verify.Credential, time.Time) {}) }()
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	st.SetState(true, nil) // the stream's first frame
	st.Send([]byte("ok"), at(0))
	for ms := 100; ms <= 900; ms += 100 { // skipped, but for less than camera.stall
		st.Send([]byte("X"), at(ms))
	}
	st.Send([]byte("ok"), at(1000))
	for ms := 1100; ms <= 2300; ms += 100 { // skipped for more than camera.stall
		st.Send([]byte("X"), at(ms))
	}
	wait := func(n int) {
		deadline := time.Now().Add(3 * time.Second)
		for {
			mu.Lock()
			got := len(states)
			mu.Unlock()
			if got >= n || time.Now().After(deadline) {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wait(2)
	st.SetState(false, errors.New("camera: no frame within camera.stall")) // and then none came: still offline, said once
	st.SetState(true, nil)
	st.Send([]byte("X"), at(2400))
	st.Send([]byte("ok"), at(2500))
	wait(3)
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(states) != 3 || states[0] != "true <nil>" || !strings.HasPrefix(states[1], "false ") || states[2] != "true <nil>" {
		t.Fatalf("states %q, want online, offline, online", states)
	}
	for _, want := range []string{"every frame skipped", "4000x3000 is over the 8.3 MP limit", "sub-stream or a lower resolution"} {
		if !strings.Contains(states[1], want) {
			t.Errorf("offline reason %q lacks %q", states[1], want)
		}
	}
	if n := strings.Count(logs.String(), `level=WARN msg="camera frame skipped"`); n != 2 {
		t.Errorf("%d WARNs of skipped frames for 2 runs of them, want 2:\n%s", n, logs.String())
	}
}
