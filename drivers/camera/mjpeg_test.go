package camera_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/camera"
	simcam "github.com/sentinel-edge/sentinel/sim/camera"
)

// fast are stream options for tests: short stall, quick reconnects.
var fast = camera.StreamOptions{Stall: 400 * time.Millisecond, Timeout: time.Second,
	BackoffBase: 5 * time.Millisecond, BackoffCap: 40 * time.Millisecond, MaxFrameBytes: 200 << 10}

// frameFile writes a small gray JPEG of the given shade and returns its name and bytes.
func frameFile(t *testing.T, dir string, shade uint8) (string, []byte) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 32, 24))
	for i := range img.Pix {
		img.Pix[i] = shade + uint8(i%7)
	}
	b, err := simcam.EncodeJPEG(img, 80)
	if err != nil {
		t.Fatal(err)
	}
	name := "f" + string(rune('a'+shade/16)) + ".jpg"
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return name, b
}

// simCamera serves script (with %A and %B standing for two frames) on loopback and
// returns its base URL, the server and the two frames.
func simCamera(t *testing.T, script string, opts simcam.Options) (string, *simcam.Server, []byte, []byte) {
	t.Helper()
	dir := t.TempDir()
	na, a := frameFile(t, dir, 40)
	nb, b := frameFile(t, dir, 200)
	script = strings.NewReplacer("%A", na, "%B", nb).Replace(script)
	p := filepath.Join(dir, "script.txt")
	if err := os.WriteFile(p, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	sc, err := simcam.LoadScript(p)
	if err != nil {
		t.Fatal(err)
	}
	if opts.FPS == 0 {
		opts.FPS = 40
	}
	srv := simcam.NewServer(sc, opts)
	base, stop, err := srv.ServeLoopback()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return base, srv, a, b
}

// recorder collects a stream's frames and state changes.
type recorder struct {
	mu     sync.Mutex
	frames []camera.Frame
	states []string
	errs   []error
	got    chan struct{}
}

func newRecorder() *recorder { return &recorder{got: make(chan struct{}, 1)} }

func (r *recorder) emit(f camera.Frame) {
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
}

func (r *recorder) state(online bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if online {
		r.states = append(r.states, "online")
	} else {
		r.states = append(r.states, "offline")
	}
	r.errs = append(r.errs, err)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *recorder) count(pred func(camera.Frame) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, f := range r.frames {
		if pred == nil || pred(f) {
			n++
		}
	}
	return n
}

func (r *recorder) stateList() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.states, ",")
}

// run starts s.Run and returns a stop function that waits for it.
func run(t *testing.T, s camera.Stream, r *recorder) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, r.emit) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v at the context's end, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
	t.Cleanup(func() { cancel() })
	return stop
}

func newMJPEG(t *testing.T, url string, r *recorder) *camera.MJPEG {
	t.Helper()
	m, err := camera.NewMJPEG(url, fast, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.OnState(r.state)
	return m
}

func TestMJPEGStream(t *testing.T) {
	for _, noLength := range []bool{false, true} {
		t.Run(map[bool]string{false: "with Content-Length", true: "without Content-Length"}[noLength], func(t *testing.T) {
			base, _, a, b := simCamera(t, "%A 0.3\n%B 30\n", simcam.Options{NoLength: noLength})
			r := newRecorder()
			m := newMJPEG(t, base+simcam.PathStream, r)
			stop := run(t, m, r)
			isA := func(f camera.Frame) bool { return bytes.Equal(f.JPEG, a) }
			isB := func(f camera.Frame) bool { return bytes.Equal(f.JPEG, b) }
			waitFor(t, "frames of both images", 5*time.Second, func() bool { return r.count(isA) > 0 && r.count(isB) > 2 })
			stop()
			if n, all := r.count(isA)+r.count(isB), r.count(nil); n != all {
				t.Errorf("%d of %d frames are neither image", all-n, all)
			}
			r.mu.Lock()
			for i := 1; i < len(r.frames); i++ {
				if r.frames[i].Seq <= r.frames[i-1].Seq {
					t.Errorf("seq %d after %d", r.frames[i].Seq, r.frames[i-1].Seq)
				}
			}
			r.mu.Unlock()
			if got := r.stateList(); got != "online" {
				t.Errorf("states %q, want online once", got)
			}
			st := m.Stats()
			if st.Frames == 0 || st.Corrupt != 0 || st.Oversize != 0 || st.Connects != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// A corrupt part and a part larger than max_frame_bytes are skipped and counted; the frames
// around them come through on the same connection.
func TestMJPEGBadParts(t *testing.T) {
	base, srv, _, b := simCamera(t, "%A 0.2\n!corrupt\n!huge 300000\n%B 30\n", simcam.Options{})
	r := newRecorder()
	m := newMJPEG(t, base+simcam.PathStream, r)
	stop := run(t, m, r)
	waitFor(t, "frames after the bad parts", 5*time.Second, func() bool {
		return r.count(func(f camera.Frame) bool { return bytes.Equal(f.JPEG, b) }) > 2
	})
	stop()
	st := m.Stats()
	if st.Corrupt != 1 || st.Oversize != 1 {
		t.Errorf("corrupt %d, oversize %d; want 1, 1", st.Corrupt, st.Oversize)
	}
	if srv.Connections() != 1 {
		t.Errorf("%d connections: a bad part must not cost the connection", srv.Connections())
	}
}

// A dropped connection is made again at once (backoff), without an offline report when it
// comes back within camera.stall.
func TestMJPEGDropRecovers(t *testing.T) {
	base, srv, _, b := simCamera(t, "%A 0.3\n!drop\n%B 30\n", simcam.Options{})
	r := newRecorder()
	m := newMJPEG(t, base+simcam.PathStream, r)
	stop := run(t, m, r)
	waitFor(t, "frames after the drop", 5*time.Second, func() bool {
		return r.count(func(f camera.Frame) bool { return bytes.Equal(f.JPEG, b) }) > 2
	})
	stop()
	if srv.Connections() < 2 {
		t.Errorf("%d connections, want a reconnect", srv.Connections())
	}
	if got := r.stateList(); got != "online" {
		t.Errorf("states %q: a reconnect within camera.stall is not an outage", got)
	}
	if st := m.Stats(); st.Failures < 1 || st.Connects < 2 {
		t.Errorf("stats %+v", st)
	}
}

// No frame within camera.stall: offline (ErrStalled), the connection is dropped and made
// again; the next frame: online.
func TestMJPEGStall(t *testing.T) {
	base, _, _, b := simCamera(t, "%A 0.3\n!stall 1.5\n%B 30\n", simcam.Options{})
	r := newRecorder()
	m := newMJPEG(t, base+simcam.PathStream, r)
	stop := run(t, m, r)
	waitFor(t, "online, offline, online", 6*time.Second, func() bool { return r.stateList() == "online,offline,online" })
	waitFor(t, "frames after the stall", 3*time.Second, func() bool {
		return r.count(func(f camera.Frame) bool { return bytes.Equal(f.JPEG, b) }) > 0
	})
	stop()
	r.mu.Lock()
	if !errors.Is(r.errs[1], camera.ErrStalled) {
		t.Errorf("offline because %v, want ErrStalled", r.errs[1])
	}
	r.mu.Unlock()
	if st := m.Stats(); st.Stalls < 1 || !st.Online {
		t.Errorf("stats %+v", st)
	}
}

// A stream that never sends a boundary is given up after a bounded number of bytes, and
// made again.
func TestMJPEGNoBoundary(t *testing.T) {
	base, srv, _, b := simCamera(t, "!garbage 0.6\n%B 30\n", simcam.Options{})
	r := newRecorder()
	m := newMJPEG(t, base+simcam.PathStream, r)
	stop := run(t, m, r)
	waitFor(t, "frames after the garbage", 6*time.Second, func() bool {
		return r.count(func(f camera.Frame) bool { return bytes.Equal(f.JPEG, b) }) > 0
	})
	stop()
	if srv.Connections() < 2 {
		t.Errorf("%d connections, want the garbage one given up", srv.Connections())
	}
	st := m.Stats()
	if st.Failures < 1 {
		t.Errorf("stats %+v", st)
	}
}

// A camera URL that redirects is refused, never followed: offline with the reason, no
// request reaches the redirect's target.
func TestMJPEGRedirectRefused(t *testing.T) {
	base, srv, _, _ := simCamera(t, "%A 30\n", simcam.Options{})
	r := newRecorder()
	m := newMJPEG(t, base+simcam.PathRedirect, r)
	stop := run(t, m, r)
	waitFor(t, "offline", 3*time.Second, func() bool { return r.stateList() == "offline" })
	stop()
	r.mu.Lock()
	err := r.errs[0]
	r.mu.Unlock()
	if !errors.Is(err, camera.ErrNotStream) || !strings.Contains(err.Error(), "redirect") {
		t.Errorf("offline because %v, want a refused redirect", err)
	}
	if srv.Connections() != 0 {
		t.Errorf("the redirect was followed: %d stream connections", srv.Connections())
	}
	if _, err := m.Snapshot(context.Background()); err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Errorf("snapshot: %v, want a refused redirect", err)
	}
}

func TestMJPEGNotAStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/jpeg":
			w.Header().Set("Content-Type", "image/jpeg")
			_, _ = w.Write([]byte{0xFF, 0xD8, 0xFF, 0xD9})
		case "/html":
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>login</html>"))
		case "/auth":
			if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "s3cret" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=f")
			_, _ = w.Write([]byte("--f\r\nContent-Length: 4\r\n\r\n\xff\xd8\xff\xd9\r\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	tests := []struct {
		path, want string
	}{
		{"/jpeg", "camera.driver: http"},
		{"/html", "not multipart"},
		{"/nope", "HTTP 404"},
		{"/auth", "HTTP 401"},
	}
	for _, tt := range tests {
		m, err := camera.NewMJPEG(srv.URL+tt.path, fast, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Snapshot(context.Background()); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.path, err, tt.want)
		}
	}
	authURL := strings.Replace(srv.URL, "http://", "http://admin:s3cret@", 1) + "/auth"
	m, err := camera.NewMJPEG(authURL, fast, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.String(), "s3cret") {
		t.Errorf("String shows the password: %s", m)
	}
	if b, err := m.Snapshot(context.Background()); err != nil || len(b) != 4 {
		t.Errorf("snapshot with basic auth: %d bytes, %v", len(b), err)
	}
	for _, bad := range []string{"ftp://cam/x", "http://", "::"} {
		if _, err := camera.NewMJPEG(bad, fast, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Snapshot: one frame over its own connection when the stream is off; the newest frame of
// the running stream otherwise (no second connection).
func TestMJPEGSnapshot(t *testing.T) {
	base, srv, a, _ := simCamera(t, "%A 30\n", simcam.Options{})
	r := newRecorder()
	m := newMJPEG(t, base+simcam.PathStream, r)
	b, err := m.Snapshot(context.Background())
	if err != nil || !bytes.Equal(b, a) {
		t.Fatalf("snapshot: %d bytes, %v", len(b), err)
	}
	stop := run(t, m, r)
	waitFor(t, "a frame", 3*time.Second, func() bool { return r.count(nil) > 0 })
	conns := srv.Connections()
	for range 3 {
		b, err := m.Snapshot(context.Background())
		if err != nil || !bytes.Equal(b, a) {
			t.Fatalf("snapshot while running: %d bytes, %v", len(b), err)
		}
	}
	if srv.Connections() != conns {
		t.Errorf("snapshots while running opened %d connections", srv.Connections()-conns)
	}
	stop()
	if err := m.Halt(); err != nil {
		t.Error(err)
	}
}

// The receiver may be slow: it gets the newest frame each time, the ones in between are
// counted as skipped, and the stream keeps reading.
func TestMJPEGSlowReceiver(t *testing.T) {
	base, _, _, _ := simCamera(t, "%A 30\n", simcam.Options{FPS: 50})
	m, err := camera.NewMJPEG(base+simcam.PathStream, fast, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan camera.Frame, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = m.Run(ctx, func(f camera.Frame) { got <- f; time.Sleep(100 * time.Millisecond) })
		close(done)
	}()
	waitFor(t, "skipped frames", 5*time.Second, func() bool { return m.Stats().Skipped > 5 && len(got) >= 3 })
	cancel()
	<-done
}
