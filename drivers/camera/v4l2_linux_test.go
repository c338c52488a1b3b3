package camera_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/blackjack/webcam"

	"github.com/sentinel-edge/sentinel/drivers/camera"
	"github.com/sentinel-edge/sentinel/drivers/camera/cameratest"
)

// streamDev is a V4L2 device in streaming mode: it yields frames from a channel, times out
// (as webcam does) when none is there, and fails with failErr once set.
type streamDev struct {
	mu        sync.Mutex
	frames    chan []byte
	cur       []byte
	failErr   error
	started   int
	closed    int
	streaming bool
}

func (d *streamDev) StartStreaming() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.started++
	d.streaming = true
	return nil
}
func (d *streamDev) StopStreaming() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.streaming = false
	return nil
}
func (d *streamDev) Close() error { d.mu.Lock(); d.closed++; d.mu.Unlock(); return nil }
func (d *streamDev) WaitForFrame(uint32) error {
	d.mu.Lock()
	err := d.failErr
	d.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case f := <-d.frames:
		d.mu.Lock()
		d.cur = f
		d.mu.Unlock()
		return nil
	case <-time.After(20 * time.Millisecond): // a short "second"
		return new(webcam.Timeout)
	}
}
func (d *streamDev) ReadFrame() ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur, nil
}

func TestV4L2Stream(t *testing.T) {
	dev := &streamDev{frames: make(chan []byte, 16)}
	var opens int
	var mu sync.Mutex
	old := camera.OpenV4L2Device
	camera.OpenV4L2Device = func(string) (camera.Frames, error) {
		mu.Lock()
		defer mu.Unlock()
		opens++
		return dev, nil
	}
	t.Cleanup(func() { camera.OpenV4L2Device = old })

	cam, err := camera.NewV4L2Stream("/dev/video0", camera.StreamOptions{Stall: 300 * time.Millisecond, BackoffBase: time.Millisecond, BackoffCap: 5 * time.Millisecond, MaxFrameBytes: 1000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var states []bool
	var smu sync.Mutex
	cam.OnState(func(on bool, _ error) { smu.Lock(); states = append(states, on); smu.Unlock() })
	got := make(chan camera.Frame, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cam.Run(ctx, func(f camera.Frame) { got <- f }) }()

	padded := append(append([]byte(nil), cameratest.JPEG...), 0, 0)
	for i, batch := range [][][]byte{{padded}, {{0xFF, 0xD8, 0xFF, 0x00}, make([]byte, 2000), cameratest.JPEG}} {
		for _, f := range batch { // a frame, then a partial (corrupt), an oversize and a frame
			dev.frames <- f
		}
		select {
		case f := <-got:
			if string(f.JPEG) != string(cameratest.JPEG) {
				t.Errorf("frame %d: % X", i, f.JPEG)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("no frame")
		}
	}
	// While streaming, a snapshot is the newest frame, without touching the device.
	if b, err := cam.Snapshot(context.Background()); err != nil || string(b) != string(cameratest.JPEG) {
		t.Errorf("snapshot while streaming: % X, %v", b, err)
	}
	// The device fails: it is closed and opened again, and frames come again.
	dev.mu.Lock()
	dev.failErr = errors.New("no such device")
	dev.mu.Unlock()
	waitOpens := func(n int) {
		deadline := time.Now().Add(3 * time.Second)
		for {
			mu.Lock()
			o := opens
			mu.Unlock()
			if o >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d opens, want %d", o, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitOpens(3)
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		smu.Lock()
		off := len(states) > 1 && !states[len(states)-1]
		smu.Unlock()
		if off {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no offline report while the device failed for longer than the stall time")
		}
	}
	dev.mu.Lock()
	dev.failErr = nil
	dev.mu.Unlock()
	dev.frames <- cameratest.JPEG
	select {
	case <-got:
	case <-time.After(3 * time.Second):
		t.Fatal("no frame after the device came back")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	st := cam.Stats()
	if st.Corrupt != 1 || st.Oversize != 1 || st.Frames != 3 {
		t.Errorf("stats %+v", st)
	}
	smu.Lock()
	defer smu.Unlock()
	if len(states) < 3 || !states[0] || states[1] || !states[len(states)-1] {
		t.Errorf("states %v, want online, offline, ..., online", states)
	}
}
