package ops

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// The screen and metrics listeners serve at most maxHTTPConns connections at once (found:
// thousands of local connections took every file descriptor of the daemon); the next waits
// until one ends, and is served then.
func TestServeHTTPBoundsConnections(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var inside atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inside.Add(1)
		<-release
		fmt.Fprint(w, "ok")
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveHTTP(ctx, l, h) }()
	defer func() { cancel(); <-done }()

	results := make(chan error, maxHTTPConns+1)
	for range maxHTTPConns + 1 {
		go func() {
			c := http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
			resp, err := c.Get("http://" + l.Addr().String() + "/")
			if err == nil {
				resp.Body.Close()
			}
			results <- err
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for inside.Load() < maxHTTPConns && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // room for one more to get in, were it let
	if n := inside.Load(); n != maxHTTPConns {
		t.Fatalf("%d requests served at once, want %d", n, maxHTTPConns)
	}
	close(release)
	for range maxHTTPConns + 1 {
		if err := <-results; err != nil {
			t.Errorf("a request failed: %v", err)
		}
	}
	if n := inside.Load(); n != maxHTTPConns+1 {
		t.Errorf("%d requests served in all, want %d", n, maxHTTPConns+1)
	}
}
