//go:build opencv

package facedetect_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	simcam "github.com/sentinel-edge/sentinel/sim/camera"
	"github.com/sentinel-edge/sentinel/sim/platform"
	"github.com/sentinel-edge/sentinel/sim/population"
)

// simProcess starts the built sentinel-sim with args and returns the address it listens on.
func simProcess(t *testing.T, args ...string) string {
	t.Helper()
	dir := os.Getenv("SENTINEL_BIN_DIR")
	if dir == "" {
		t.Skip("SENTINEL_BIN_DIR not set (make test sets it)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "sentinel-sim"), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(10 * time.Second):
		t.Fatalf("sentinel-sim %s did not listen", args[0])
	}
	return ""
}

// The built binaries: sentinel-sim camera plays a person twice; the unit's side (MJPEG
// driver, OpenCV detector, tracker) triggers once each time; sentinel-sim api with that
// person's photo enrolled finds them (health status and score), and one with only another
// person's photo answers not_found.
func TestBinariesFaceSearch(t *testing.T) {
	dir := t.TempDir()
	scenes(t, dir)
	for _, name := range []string{"astronaut", "messi"} {
		img, ok, err := simcam.EnrolPhoto(name)
		if err != nil || !ok {
			missing(t, "test photo %s not installed (%v)", name, err)
		}
		b, _ := simcam.EncodeJPEG(img, 95)
		_ = os.WriteFile(filepath.Join(dir, name+".jpg"), b, 0o600)
		_ = os.WriteFile(filepath.Join(dir, name+".csv"), []byte(strings.Join(population.HeaderWithFace, ",")+"\n"+
			"11010519491231002X,张三,green,,,2,HC-A,"+name+".jpg\n"), 0o600)
	}
	_ = os.WriteFile(filepath.Join(dir, "script.txt"), []byte("empty.jpg 1\nface.jpg 2\nempty.jpg 2.5\nface.jpg 2\nempty.jpg 60\n"), 0o600)
	enrolled := simProcess(t, "api", "--listen", "127.0.0.1:0", "--population", filepath.Join(dir, "astronaut.csv"))
	other := simProcess(t, "api", "--listen", "127.0.0.1:0", "--population", filepath.Join(dir, "messi.csv"))
	cam := simProcess(t, "camera", "--listen", "127.0.0.1:0", "--script", filepath.Join(dir, "script.txt"))

	var states []bool
	got := watch(t, "http://"+cam+"/stream", 8*time.Second, &states)
	if len(got.triggers) != 2 {
		t.Fatalf("%d triggers, want 2", len(got.triggers))
	}
	for i, tr := range got.triggers {
		for api, want := range map[string]int{enrolled: http.StatusOK, other: http.StatusNotFound} {
			body, _ := json.Marshal(platform.FaceSearchRequest{ImageJPEG: base64.StdEncoding.EncodeToString(tr.JPEG)})
			resp, err := http.Post("http://"+api+platform.PathFaceSearch, "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var a platform.Answer
			err = json.NewDecoder(resp.Body).Decode(&a)
			resp.Body.Close()
			if err != nil || resp.StatusCode != want {
				t.Fatalf("trigger %d: HTTP %d (%v), want %d", i, resp.StatusCode, err, want)
			}
			if want == http.StatusOK && (a.Data == nil || a.Data.Identity.IDNumber != "11010519491231002X" || a.Data.HealthCode != "green" || a.Data.Score == nil) {
				t.Errorf("trigger %d: answer %+v", i, a)
			}
			if want == http.StatusNotFound && a.Code != platform.CodeNotFound {
				t.Errorf("trigger %d: code %q, want not_found", i, a.Code)
			}
		}
	}
}
