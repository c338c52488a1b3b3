package camera_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/camera"
	"github.com/sentinel-edge/sentinel/drivers/camera/cameratest"
)

var _ camera.Camera = (*camera.HTTP)(nil)
var _ camera.Camera = (*camera.V4L2)(nil)
var _ camera.Camera = (*cameratest.Camera)(nil)

func TestHTTPSnapshot(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/snap.jpg":
			if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "s3cret" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "image/jpeg")
			_, _ = w.Write(cameratest.JPEG)
		case "/html":
			_, _ = w.Write([]byte("<html>login</html>"))
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	authURL := strings.Replace(srv.URL, "http://", "http://admin:s3cret@", 1)

	cam, err := camera.NewHTTP(authURL+"/snap.jpg", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cam.String(), "s3cret") {
		t.Errorf("String shows the password: %s", cam)
	}
	b, err := cam.Snapshot(context.Background())
	if err != nil || !camera.IsJPEG(b) {
		t.Fatalf("snapshot: %d bytes, %v", len(b), err)
	}
	tests := []struct {
		name, url string
		want      string
		is        error
	}{
		{"no credentials", srv.URL + "/snap.jpg", "HTTP 401", nil},
		{"not found", srv.URL + "/nope", "HTTP 404", nil},
		{"not a jpeg", srv.URL + "/html", "", camera.ErrNotJPEG},
		{"timeout", srv.URL + "/slow", "Timeout", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := camera.NewHTTP(tt.url, 200*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Snapshot(context.Background())
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q / %v", err, tt.want, tt.is)
			}
		})
	}
	if _, err := camera.NewHTTP("ftp://cam/x", time.Second); err == nil {
		t.Error("ftp URL accepted")
	}
}

// fakeFrames is a V4L2 device that yields the given frames in turn.
type fakeFrames struct {
	frames           [][]byte
	started, stopped int
	closed           bool
	waitErr          error
}

func (f *fakeFrames) StartStreaming() error { f.started++; return nil }
func (f *fakeFrames) StopStreaming() error  { f.stopped++; return nil }
func (f *fakeFrames) Close() error          { f.closed = true; return nil }
func (f *fakeFrames) WaitForFrame(uint32) error {
	return f.waitErr
}
func (f *fakeFrames) ReadFrame() ([]byte, error) {
	if len(f.frames) == 0 {
		return nil, errors.New("no frame")
	}
	b := f.frames[0]
	f.frames = f.frames[1:]
	return b, nil
}

func TestV4L2Snapshot(t *testing.T) {
	partial := []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x01}
	padded := append(append([]byte(nil), cameratest.JPEG...), 0, 0, 0)
	dev := &fakeFrames{frames: [][]byte{{}, partial, padded}}
	old := camera.OpenV4L2Device
	camera.OpenV4L2Device = func(string) (camera.Frames, error) { return dev, nil }
	t.Cleanup(func() { camera.OpenV4L2Device = old })

	cam, err := camera.NewV4L2("/dev/video0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := cam.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(cameratest.JPEG) {
		t.Errorf("snapshot % X, want the complete frame without padding", b)
	}
	if dev.started != 1 || dev.stopped != 1 {
		t.Errorf("started %d, stopped %d; want 1, 1", dev.started, dev.stopped)
	}
	dev.waitErr = errors.New("timeout")
	if _, err := cam.Snapshot(context.Background()); err == nil || dev.stopped != 2 {
		t.Errorf("failed wait: err %v, stopped %d", err, dev.stopped)
	}
	if err := cam.Halt(); err != nil || !dev.closed {
		t.Error("Halt did not close the device")
	}
}

func TestV4L2Missing(t *testing.T) {
	if _, err := camera.NewV4L2("/dev/video-none-99"); err == nil {
		t.Fatal("missing device opened")
	}
}

// A snapshot URL that redirects is refused, never followed: the picture (and the basic-auth
// credentials) would go wherever the answer points.
func TestHTTPRedirectRefused(t *testing.T) {
	var reached int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		_, _ = w.Write(cameratest.JPEG)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.RedirectHandler(other.URL+"/snap.jpg", http.StatusFound))
	defer srv.Close()
	cam, err := camera.NewHTTP(strings.Replace(srv.URL, "http://", "http://admin:s3cret@", 1)+"/snap.jpg", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cam.Snapshot(context.Background())
	if err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Errorf("snapshot: %v, want a refused redirect", err)
	}
	if reached != 0 {
		t.Errorf("the redirect was followed (%d requests)", reached)
	}
}
