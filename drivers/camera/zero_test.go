package camera

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// sliceSource gives its frames, then blocks until interrupted.
type sliceSource struct {
	frames [][]byte
	stop   chan struct{}
	once   sync.Once
}

func (s *sliceSource) next() ([]byte, error) {
	if len(s.frames) > 0 {
		b := s.frames[0]
		s.frames = s.frames[1:]
		return b, nil
	}
	<-s.stop
	return nil, errors.New("interrupted")
}
func (s *sliceSource) interrupt()   { s.once.Do(func() { close(s.stop) }) }
func (s *sliceSource) close() error { s.interrupt(); return nil }

// Frames may show faces: every frame the stream held (the newest, kept for Snapshot, and the
// copies a slow receiver never took) is zeroed once replaced, and none outlives Run.
func TestStreamZeroesFrames(t *testing.T) {
	var given [][]byte
	for i := range 5 {
		given = append(given, bytes.Repeat([]byte{byte(0xA0 + i)}, 64))
	}
	src := &sliceSource{frames: append([][]byte(nil), given...), stop: make(chan struct{})}
	dialled := false
	s := newStream("test", StreamOptions{Stall: time.Minute}, nil, func(context.Context) (source, error) {
		if dialled {
			return nil, errors.New("once")
		}
		dialled = true
		return src, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	var got []Frame
	done := make(chan struct{})
	go func() {
		_ = s.run(ctx, func(f Frame) {
			got = append(got, f)
			<-release // a slow receiver: the frames behind it are replaced
		})
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for s.frames.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	close(release)
	<-done
	zero := make([]byte, 64)
	for i, b := range given {
		if !bytes.Equal(b, zero) {
			t.Errorf("frame %d still holds its picture after Run", i+1)
		}
	}
	if s.skipped.Load() == 0 {
		t.Fatal("no frame was replaced before the receiver took it: the test proves nothing")
	}
}

// A camera URL's user, password and query (where many cameras take credentials) never appear
// in what the driver shows: String, and so its errors and the camera_offline events.
func TestShownURLHidesCredentials(t *testing.T) {
	m, err := NewMJPEG("http://admin:s3cret@127.0.0.1:1/video?user=admin&pwd=s3cret", StreamOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHTTP("http://127.0.0.1:1/snap.cgi?pwd=s3cret", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, serr := h.Snapshot(context.Background())
	for _, s := range []string{m.String(), h.String(), serr.Error()} {
		if bytes.Contains([]byte(s), []byte("s3cret")) || !bytes.Contains([]byte(s), []byte("127.0.0.1:1/")) {
			t.Errorf("shown as %q", s)
		}
	}
}
