//go:build opencv

package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/camera"
	"github.com/sentinel-edge/sentinel/drivers/facedetect"
	"github.com/sentinel-edge/sentinel/drivers/facetrack"
)

type timed struct {
	d    *facedetect.Cascade
	took []time.Duration
}

func (t *timed) Detect(g *imageGray) ([]imageRect, error) {
	start := time.Now()
	r, err := t.d.Detect(g)
	t.took = append(t.took, time.Since(start))
	return r, err
}

func main() {
	url := flag.String("url", "", "MJPEG stream URL")
	secs := flag.Int("seconds", 20, "how long to run")
	cascade := flag.String("cascade", facedetect.DefaultCascade, "cascade file")
	maxWidth := flag.Int("max-width", 640, "detect on frames scaled to this width")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "facebench: --url is required")
		os.Exit(2)
	}
	d, err := facedetect.New(facedetect.Options{Cascade: *cascade, MaxWidth: *maxWidth})
	if err != nil {
		fmt.Fprintln(os.Stderr, "facebench:", err)
		os.Exit(1)
	}
	td := &timed{d: d}
	w, err := facetrack.NewWatcher(td, facetrack.WatcherOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "facebench:", err)
		os.Exit(1)
	}
	cam, err := camera.NewMJPEG(*url, camera.StreamOptions{}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "facebench:", err)
		os.Exit(2)
	}
	fmt.Printf("rss at start: %.1f MB\n", status("VmRSS"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*secs)*time.Second)
	defer cancel()
	frames, triggers := 0, 0
	start := time.Now()
	_ = cam.Run(ctx, func(f camera.Frame) {
		st, err := w.Frame(f.Time, f.JPEG)
		if err == nil {
			frames++
		}
		if st.Trigger != nil {
			triggers++
		}
	})
	el := time.Since(start).Seconds()
	slices.Sort(td.took)
	p := func(q float64) float64 {
		if len(td.took) == 0 {
			return 0
		}
		return float64(td.took[int(q*float64(len(td.took)-1))].Microseconds()) / 1000
	}
	st := cam.Stats()
	fmt.Printf("frames processed: %d in %.1f s = %.1f frames/s (read %d, skipped %d)\n", frames, el, float64(frames)/el, st.Frames, st.Skipped)
	fmt.Printf("detect ms per frame: p50 %.1f, p99 %.1f\n", p(0.5), p(0.99))
	fmt.Printf("triggers: %d\n", triggers)
	fmt.Printf("rss: %.1f MB, peak %.1f MB\n", status("VmRSS"), status("VmHWM"))
}

func status(key string) float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key+":") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return 0
}
