package camera

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Camera captures one JPEG still.
type Camera interface {
	Snapshot(ctx context.Context) ([]byte, error)
	String() string
	Halt() error
}

// Errors.
var (
	ErrNotJPEG  = errors.New("camera: snapshot is not a JPEG")
	ErrTooLarge = errors.New("camera: snapshot larger than the limit")
)

// MaxSnapshot bounds a snapshot's size.
const MaxSnapshot = 8 << 20

// IsJPEG checks the SOI marker.
func IsJPEG(b []byte) bool { return len(b) > 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF }

// HTTP is an IP camera's snapshot URL (e.g. http://cam/ISAPI/Streaming/channels/1/picture).
type HTTP struct {
	url    string
	client *http.Client
	shown  string // the URL without credentials, for String
}

// NewHTTP returns a camera at rawURL; timeout bounds each snapshot.
func NewHTTP(rawURL string, timeout time.Duration) (*HTTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("camera: snapshot URL must be http:// or https:// with a host")
	}
	shown := *u
	shown.User = nil // credentials never appear in logs
	return &HTTP{url: rawURL, client: &http.Client{Timeout: timeout}, shown: shown.String()}, nil
}

func (h *HTTP) String() string { return "camera at " + h.shown }

// Snapshot fetches one JPEG.
func (h *HTTP) Snapshot(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return nil, fmt.Errorf("camera: %w", err)
	}
	if u, _ := url.Parse(h.url); u != nil && u.User != nil {
		p, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), p)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("camera: snapshot from %s: %w", h.shown, unwrapURLErr(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("camera: snapshot from %s: HTTP %d", h.shown, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxSnapshot+1))
	if err != nil {
		return nil, fmt.Errorf("camera: snapshot from %s: %w", h.shown, err)
	}
	if len(b) > MaxSnapshot {
		return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, MaxSnapshot)
	}
	if !IsJPEG(b) {
		return nil, fmt.Errorf("%w: %d bytes from %s", ErrNotJPEG, len(b), h.shown)
	}
	return b, nil
}

func unwrapURLErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Halt does nothing: each snapshot is its own request.
func (h *HTTP) Halt() error { return nil }

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

// V4L2 is a camera on a Video4Linux2 device producing MJPEG frames.
type V4L2 struct {
	device string
	dev    Frames
}

// OpenV4L2Device opens a V4L2 device and sets it to MJPEG; tests swap it.
var OpenV4L2Device = openV4L2

// NewV4L2 opens device (e.g. /dev/video0).
func NewV4L2(device string) (*V4L2, error) {
	d, err := OpenV4L2Device(device)
	if err != nil {
		return nil, fmt.Errorf("camera: open %s: %w", device, err)
	}
	return &V4L2{device: device, dev: d}, nil
}

func (v *V4L2) String() string { return "camera on " + v.device }

// Snapshot streams until one complete JPEG frame arrives (the first frames of a USB camera
// are often empty or partial), then stops.
func (v *V4L2) Snapshot(ctx context.Context) ([]byte, error) {
	if err := v.dev.StartStreaming(); err != nil {
		return nil, fmt.Errorf("camera: start %s: %w", v.device, err)
	}
	defer func() { _ = v.dev.StopStreaming() }()
	for tries := 0; tries < 10; tries++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := v.dev.WaitForFrame(1); err != nil {
			return nil, fmt.Errorf("camera: wait for a frame from %s: %w", v.device, err)
		}
		b, err := v.dev.ReadFrame()
		if err != nil {
			return nil, fmt.Errorf("camera: read a frame from %s: %w", v.device, err)
		}
		if IsJPEG(b) && bytes.HasSuffix(bytes.TrimRight(b, "\x00"), []byte{0xFF, 0xD9}) {
			return append([]byte(nil), bytes.TrimRight(b, "\x00")...), nil
		}
	}
	return nil, fmt.Errorf("%w: no complete frame in 10 from %s", ErrNotJPEG, v.device)
}

// Halt closes the device.
func (v *V4L2) Halt() error { return v.dev.Close() }
