package camera

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// Frames is what the V4L2 camera needs of a capture device: start streaming, wait for a
// frame, read it, stop. *webcam.Webcam provides it on Linux (see OpenV4L2Device); tests use
// a fake.
type Frames interface {
	StartStreaming() error
	WaitForFrame(timeoutSeconds uint32) error
	ReadFrame() ([]byte, error)
	StopStreaming() error
	Close() error
}

// OpenV4L2Device opens a V4L2 device and sets it to MJPEG; tests swap it.
var OpenV4L2Device = openV4L2

// IsWaitTimeout says whether a WaitForFrame error is only "no frame yet"; tests swap it.
var IsWaitTimeout = isWaitTimeout

// V4L2 is a camera on a Video4Linux2 device producing MJPEG frames: a Camera (Snapshot) and
// a Stream (Run, streaming mode).
type V4L2 struct {
	*stream
	device string

	mu  sync.Mutex // guards dev: Snapshot and Run do not use the device at once
	dev Frames     // nil after a failure or Halt; opened again when needed
}

var (
	_ Stream = (*V4L2)(nil)
	_ Camera = (*V4L2)(nil)
)

// NewV4L2 opens device (e.g. /dev/video0) with the default stream options.
func NewV4L2(device string) (*V4L2, error) {
	return NewV4L2Stream(device, StreamOptions{}, nil)
}

// NewV4L2Stream opens device with opts; a device that does not open is an error now (so
// that start-up fails naming camera.device), and later is reopened by Run with backoff.
func NewV4L2Stream(device string, opts StreamOptions, log *slog.Logger) (*V4L2, error) {
	d, err := OpenV4L2Device(device)
	if err != nil {
		return nil, fmt.Errorf("camera: open %s: %w", device, err)
	}
	v := &V4L2{device: device, dev: d}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v.stream = newStream(device, opts, log.With("driver", "camera.v4l2", "device", device), v.dial)
	return v, nil
}

func (v *V4L2) String() string { return "camera on " + v.device }

// Run streams frames until ctx ends (see Stream). A device that fails or vanishes is closed
// and opened again with backoff.
func (v *V4L2) Run(ctx context.Context, emit func(Frame)) error { return v.run(ctx, emit) }

// Snapshot returns the newest frame while Run streams; otherwise it streams until one
// complete JPEG frame arrives (the first frames of a USB camera are often empty or
// partial), then stops.
func (v *V4L2) Snapshot(ctx context.Context) ([]byte, error) {
	if b, ok, err := v.fresh(ctx); ok {
		return b, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	dev, err := v.openLocked()
	if err != nil {
		return nil, err
	}
	if err := dev.StartStreaming(); err != nil {
		return nil, fmt.Errorf("camera: start %s: %w", v.device, err)
	}
	defer func() { _ = dev.StopStreaming() }()
	for tries := 0; tries < 10; tries++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := dev.WaitForFrame(1); err != nil {
			return nil, fmt.Errorf("camera: wait for a frame from %s: %w", v.device, err)
		}
		b, err := dev.ReadFrame()
		if err != nil {
			return nil, fmt.Errorf("camera: read a frame from %s: %w", v.device, err)
		}
		if f, ok := completeFrame(b); ok {
			return f, nil
		}
	}
	return nil, fmt.Errorf("%w: no complete frame in 10 from %s", ErrNotJPEG, v.device)
}

// completeFrame copies b without its padding when it is a whole JPEG (the driver's buffer
// is reused for the next frame).
func completeFrame(b []byte) ([]byte, bool) {
	b = bytes.TrimRight(b, "\x00")
	if !IsJPEG(b) || !bytes.HasSuffix(b, []byte{0xFF, 0xD9}) {
		return nil, false
	}
	return append([]byte(nil), b...), true
}

func (v *V4L2) openLocked() (Frames, error) {
	if v.dev != nil {
		return v.dev, nil
	}
	d, err := OpenV4L2Device(v.device)
	if err != nil {
		return nil, fmt.Errorf("camera: open %s: %w", v.device, err)
	}
	v.dev = d
	return d, nil
}

// Halt closes the device.
func (v *V4L2) Halt() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dev == nil {
		return nil
	}
	err := v.dev.Close()
	v.dev = nil
	return err
}

// v4l2Source is the device while Run streams. It holds v.mu from dial to close.
type v4l2Source struct {
	v   *V4L2
	ctx context.Context
	dev Frames
	max int
}

func (v *V4L2) dial(ctx context.Context) (source, error) {
	v.mu.Lock()
	dev, err := v.openLocked()
	if err == nil {
		if err = dev.StartStreaming(); err != nil {
			_ = dev.Close()
			v.dev = nil
			err = fmt.Errorf("camera: start %s: %w", v.device, err)
		}
	}
	if err != nil {
		v.mu.Unlock()
		return nil, err
	}
	return &v4l2Source{v: v, ctx: ctx, dev: dev, max: v.opts.MaxFrameBytes}, nil
}

// next waits for a frame one second at a time, checking ctx in between (the device is not
// closed under a waiting read: its buffers are mapped memory).
func (s *v4l2Source) next() ([]byte, error) {
	for {
		if err := s.ctx.Err(); err != nil {
			return nil, context.Cause(s.ctx)
		}
		if err := s.dev.WaitForFrame(1); err != nil {
			if IsWaitTimeout(err) {
				continue
			}
			return nil, fmt.Errorf("camera: wait for a frame from %s: %w", s.v.device, err)
		}
		b, err := s.dev.ReadFrame()
		if err != nil {
			return nil, fmt.Errorf("camera: read a frame from %s: %w", s.v.device, err)
		}
		if len(b) == 0 {
			continue // no frame this time (webcam's ReadFrame on EAGAIN)
		}
		if len(b) > s.max {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrPartTooLarge, len(b), s.max)
		}
		f, ok := completeFrame(b)
		if !ok {
			return nil, fmt.Errorf("%w: %d bytes from %s", ErrCorruptPart, len(b), s.v.device)
		}
		return f, nil
	}
}

func (s *v4l2Source) interrupt() {} // next checks ctx every second

// close stops streaming and closes the device, so that the next dial (or Snapshot) opens it
// afresh: a device that failed or stalled may be a different one when it comes back.
func (s *v4l2Source) close() error {
	defer s.v.mu.Unlock()
	err := s.dev.StopStreaming()
	_ = s.dev.Close()
	s.v.dev = nil
	return err
}
