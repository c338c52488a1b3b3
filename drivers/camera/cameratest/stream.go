package cameratest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/camera"
)

// Stream is a fake frame stream: Run emits, in order, each frame sent with Send (or on C),
// until its context ends. SetState plays the driver's online/offline reports.
type Stream struct {
	C chan camera.Frame

	mu      sync.Mutex
	onState func(bool, error)
	seq     atomic.Uint64
	running atomic.Bool
}

var _ camera.Stream = (*Stream)(nil)

// NewStream returns a stream whose C holds up to 64 frames.
func NewStream() *Stream { return &Stream{C: make(chan camera.Frame, 64)} }

func (s *Stream) String() string { return "fake stream" }

// Halt does nothing.
func (s *Stream) Halt() error { return nil }

// OnState sets the state callback.
func (s *Stream) OnState(f func(online bool, err error)) {
	s.mu.Lock()
	s.onState = f
	s.mu.Unlock()
}

// SetState calls the state callback.
func (s *Stream) SetState(online bool, err error) {
	s.mu.Lock()
	f := s.onState
	s.mu.Unlock()
	if f != nil {
		f(online, err)
	}
}

// Send queues a frame taken at at (numbered in order).
func (s *Stream) Send(jpeg []byte, at time.Time) {
	s.C <- camera.Frame{JPEG: append([]byte(nil), jpeg...), Seq: s.seq.Add(1), Time: at}
}

// Running says whether Run is on.
func (s *Stream) Running() bool { return s.running.Load() }

// Run emits the frames until ctx ends; it returns nil.
func (s *Stream) Run(ctx context.Context, emit func(camera.Frame)) error {
	s.running.Store(true)
	defer s.running.Store(false)
	for {
		select {
		case <-ctx.Done():
			return nil
		case f := <-s.C:
			emit(f)
		}
	}
}
