package camera_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/camera"
)

// partServer serves an endless MJPEG stream whose parts follow *mode: "good" (the JPEG),
// "gif" (a GIF part), "none" (nothing, the connection kept open).
func partServer(t *testing.T, good []byte, mode *atomic.Value) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=f")
		fl := w.(http.Flusher)
		for r.Context().Err() == nil {
			switch mode.Load().(string) {
			case "good":
				fmt.Fprintf(w, "--f\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n", len(good), good)
			case "gif":
				body := "GIF89a" + strings.Repeat("x", 500)
				fmt.Fprintf(w, "--f\r\nContent-Type: image/gif\r\nContent-Length: %d\r\n\r\n%s\r\n", len(body), body)
			}
			fl.Flush()
			time.Sleep(20 * time.Millisecond)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// A stream of nothing but bad parts goes offline with the last part's fault in the reason,
// not only "no frame within camera.stall": the same words selftest gives.
func TestStreamOfflineNamesTheBadParts(t *testing.T) {
	_, good := frameFile(t, t.TempDir(), 90)
	var mode atomic.Value
	mode.Store("good")
	url := partServer(t, good, &mode)
	r := newRecorder()
	m := newMJPEG(t, url, r)
	stop := run(t, m, r)
	waitFor(t, "online", 3*time.Second, func() bool { return r.stateList() == "online" })
	mode.Store("gif")
	waitFor(t, "offline", 3*time.Second, func() bool { return r.stateList() == "online,offline" })
	stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.errs[1]
	if !errors.Is(err, camera.ErrStalled) || !errors.Is(err, camera.ErrCorruptPart) || !strings.Contains(err.Error(), `part of type "image/gif"`) {
		t.Errorf("offline because %v; want the stall and the last corrupt part", err)
	}
}

// A watchdog that fires long after it was armed (the process was paused: SIGSTOP, a frozen
// VM) says nothing about the camera: it waits one more camera.stall, and frames that come
// within it are no outage.
func TestStreamPausedProcessIsNoOutage(t *testing.T) {
	_, good := frameFile(t, t.TempDir(), 90)
	var mode atomic.Value
	mode.Store("good")
	url := partServer(t, good, &mode)
	var mu sync.Mutex
	skew := time.Duration(0)
	opts := fast
	opts.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(skew) }
	m, err := camera.NewMJPEG(url, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder()
	m.OnState(r.state)
	stop := run(t, m, r)
	waitFor(t, "online", 3*time.Second, func() bool { return r.stateList() == "online" })
	// The pause: no frame, and the clock jumps 20 s while the watchdog's stall runs out.
	mode.Store("none")
	mu.Lock()
	skew = 20 * time.Second
	mu.Unlock()
	time.Sleep(opts.Stall + opts.Stall/2) // the watchdog fires (late, by the clock)
	mode.Store("good")                    // resumed: the camera's frames are there at once
	n := r.count(nil)
	waitFor(t, "frames after the pause", 3*time.Second, func() bool { return r.count(nil) > n+3 })
	if got := r.stateList(); got != "online" {
		t.Errorf("states %q: a paused process is not a camera outage", got)
	}
	// A real outage after that is still one.
	mode.Store("none")
	waitFor(t, "offline", 3*time.Second, func() bool { return r.stateList() == "online,offline" })
	stop()
}
