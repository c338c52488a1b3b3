package e2e_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/mqtttest"
)

// TestE2EFaceLatency measures face in view → verdict through the built pillar binary, for
// docs/BENCHMARKS.md (not a timed test: it runs only with SENTINEL_FACE_LATENCY=N, N
// passages). A camera served here switches from the empty wall to the person at a known
// instant; the clock stops when the passage record arrives from Mosquitto (after the
// detector, the quality gates and the best of 3 frames, the face search on loopback, the
// decision and the durable commit, plus the publish: an upper bound).
func TestE2EFaceLatency(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SENTINEL_FACE_LATENCY"))
	if n <= 0 {
		t.Skip("set SENTINEL_FACE_LATENCY=N to measure N face passages")
	}
	broker := mqtttest.Start(t)
	const device = "e2e-pillar-latency"
	passages := broker.Subscribe(t, "sentinel/v1/350582-0001/"+device+"/passage")
	w := newFaceWorld(t, "astronaut", "empty.jpg 600\n")
	face, err := os.ReadFile(filepath.Join(w.dir, "face.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	empty, err := os.ReadFile(filepath.Join(w.dir, "empty.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	fps, _ := strconv.Atoi(os.Getenv("SENTINEL_FACE_FPS"))
	if fps <= 0 {
		fps = 15
	}
	var showing atomic.Bool
	cam := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=f")
		tick := time.NewTicker(time.Second / time.Duration(fps))
		defer tick.Stop()
		for {
			b := empty
			if showing.Load() {
				b = face
			}
			if _, err := fmt.Fprintf(rw, "--f\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(b)); err != nil {
				return
			}
			if _, err := rw.Write(append(b, "\r\n"...)); err != nil {
				return
			}
			rw.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	}))
	t.Cleanup(cam.Close) // after the agent stops (cleanups run last first): a streaming handler ends with its client
	w.cam = strings.TrimPrefix(cam.URL, "http://")
	ag := w.agent(t, broker, device, "")
	var lat []time.Duration
	for i := range n {
		time.Sleep(2500 * time.Millisecond) // out of view longer than camera.rearm
		showing.Store(true)
		t0 := time.Now()
		if got := passages.WaitN(i+1, 10*time.Second); len(got) < i+1 {
			t.Fatalf("passage %d: no record within 10 s:\n%s", i+1, ag.output())
		}
		lat = append(lat, time.Since(t0))
		showing.Store(false)
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	t.Logf("face in view → record at the broker, %d passages at %d fps: min %v p50 %v p90 %v p99 %v max %v",
		n, fps, lat[0].Round(time.Millisecond), q(0.5).Round(time.Millisecond), q(0.9).Round(time.Millisecond),
		q(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	if rss, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", ag.cmd.Process.Pid)); err == nil {
		for _, l := range strings.Split(string(rss), "\n") {
			if strings.HasPrefix(l, "VmHWM") || strings.HasPrefix(l, "VmRSS") {
				t.Logf("pillar agent %s", strings.Join(strings.Fields(l), " "))
			}
		}
	}
}
