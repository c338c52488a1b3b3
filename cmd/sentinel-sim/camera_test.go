package main

import (
	"bytes"
	"context"
	"image"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	simcam "github.com/sentinel-edge/sentinel/sim/camera"
)

// lockedBuffer hands each write to a reader goroutine.
type lockedBuffer struct {
	ch chan []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.ch <- append([]byte(nil), p...)
	return len(p), nil
}

func TestCameraCommand(t *testing.T) {
	dir := t.TempDir()
	frame, err := simcam.EncodeJPEG(image.NewGray(image.Rect(0, 0, 16, 16)), 80)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(dir, "a.jpg"), frame, 0o600)
	_ = os.WriteFile(filepath.Join(dir, "ok.txt"), []byte("# a person\na.jpg 30\n"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "bad.txt"), []byte("a.jpg 1\n!explode\n"), 0o600)
	usage := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"camera", "--help"}, 0, ""},
		{[]string{"camera"}, 2, "--script is required"},
		{[]string{"camera", "--script", "x", "--fps", "0"}, 2, "--fps"},
		{[]string{"camera", "--script", "x", "--listen", "0.0.0.0:1"}, 2, "--allow-remote"},
		{[]string{"camera", "--script", filepath.Join(dir, "bad.txt"), "--listen", "127.0.0.1:0"}, 1, "bad.txt:2: unknown directive"},
		{[]string{"camera", "--script", filepath.Join(dir, "none.txt"), "--listen", "127.0.0.1:0"}, 1, "none.txt"},
	}
	for _, u := range usage {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), u.args, env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}); code != u.code || !strings.Contains(stderr.String(), u.stderr) {
			t.Errorf("%v: exit %d, stderr %q; want %d, %q", u.args, code, stderr.String(), u.code, u.stderr)
		}
	}
	var stdout bytes.Buffer
	errs := &lockedBuffer{ch: make(chan []byte, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"camera", "--script", filepath.Join(dir, "ok.txt"), "--listen", "127.0.0.1:0"}, env{stdin: strings.NewReader(""), stdout: &stdout, stderr: errs})
	}()
	var addr string
	for addr == "" {
		select {
		case b := <-errs.ch:
			if s := string(b); strings.HasPrefix(s, "listening on ") {
				addr = strings.TrimSpace(strings.TrimPrefix(s, "listening on "))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no listening line")
		}
	}
	resp, err := http.Get("http://" + addr + "/snapshot.jpg")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(b, frame) {
		t.Errorf("snapshot: HTTP %d, %d bytes", resp.StatusCode, len(b))
	}
	resp, err = http.Get("http://" + addr + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/x-mixed-replace; boundary=") {
		t.Errorf("stream content type %q", ct)
	}
	resp.Body.Close()
	cancel()
	go func() {
		for range errs.ch {
		}
	}()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after SIGINT-like cancel", code)
	}
}
