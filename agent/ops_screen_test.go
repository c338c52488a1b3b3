package agent

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/verify"
)

// TestScreenClientGoneLaneMoves: a browser that leaves mid-stream is forgotten and counted,
// the browser that stays still gets every verdict, and the passages never wait for the screen.
func TestScreenClientGoneLaneMoves(t *testing.T) {
	swapClock(t, true, nil)
	_, priv, _ := ed25519.GenerateKey(nil)
	f := newCmdFixture(t, t.TempDir(), priv)
	d := f.d
	d.Cfg.Screen.Listen = fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	d.Pipeline = &Pipeline{Device: "gate-01", Venue: "350582-0001", Topic: Topic(d.Cfg, StreamPassage),
		Decider: opsDecision{Verdict: verify.Pass, Reason: verify.ReasonOK, Mode: verify.ModeOnline},
		Outbox:  d.Outbox, Relay: f.rel, Pulse: time.Millisecond, Log: quietLog()}
	run, err := setupScreen(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	observers := d.observers
	d.Pipeline.Observe = func(p Passage) {
		for _, o := range observers {
			o(p)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- run(ctx) }()
	defer func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("screen part: %v", err)
		}
	}()
	base := "http://" + d.Cfg.Screen.Listen
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(base + "/state")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the screen never listened: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	open := func() (*http.Response, *bufio.Scanner) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		nextEvent(t, sc, "unit")
		return resp, sc
	}
	stay, staySc := open()
	defer stay.Body.Close()
	gone, _ := open()
	gone.Body.Close() // leaves mid-stream

	for i := range 20 {
		hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := d.Pipeline.Handle(hctx, verify.Credential{Kind: verify.KindQR, QRToken: "HC-1"}, time.Now()); err != nil {
			t.Fatalf("passage %d: %v", i, err)
		}
		hcancel()
		nextEvent(t, staySc, "verdict")
	}
	deadline = time.Now().Add(5 * time.Second)
	for counterValue(t, f.st, "sentinel_screen_disconnects_total", map[string]string{"why": "closed"}) != 1 ||
		counterValue(t, f.st, "sentinel_screen_clients", nil) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("disconnects closed=%v clients=%v, want 1 and 1",
				counterValue(t, f.st, "sentinel_screen_disconnects_total", map[string]string{"why": "closed"}),
				counterValue(t, f.st, "sentinel_screen_clients", nil))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c := d.Pipeline.Counters(); c.Passages != 20 || c.Lost != 0 {
		t.Errorf("pipeline counters %+v, want 20 passages, none lost", c)
	}
}

// nextEvent reads the event stream up to the next event named name (unit events may come
// between verdicts).
func nextEvent(t *testing.T, sc *bufio.Scanner, name string) {
	t.Helper()
	done := make(chan bool, 1)
	go func() {
		for sc.Scan() {
			if sc.Text() == "event: "+name {
				done <- true
				return
			}
		}
		done <- false
	}()
	select {
	case ok := <-done:
		if !ok {
			t.Fatalf("the event stream ended before a %s event", name)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s event within 5s", name)
	}
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := listenLoopback(&Daemon{Log: quietLog()}, "test", "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	var port int
	if _, err := fmt.Sscanf(addr[strings.LastIndexByte(addr, ':')+1:], "%d", &port); err != nil {
		t.Fatal(err)
	}
	return port
}
