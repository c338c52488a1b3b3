package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/pipeline"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/queue/queuetest"
	"github.com/sentinel-edge/sentinel/verify"
)

// notifySocket is a fake systemd notify socket: every datagram becomes one message.
type notifySocket struct {
	msgs chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	n := &notifySocket{msgs: make(chan string, 1024)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, _, err := conn.ReadFrom(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	return n
}

// waitFor waits for a message containing want and returns how many WATCHDOG=1 pings came
// before it.
func (n *notifySocket) waitFor(t *testing.T, want string, within time.Duration) int {
	t.Helper()
	pings := 0
	deadline := time.After(within)
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				t.Fatalf("notify socket closed before %q", want)
			}
			if strings.Contains(m, want) {
				return pings
			}
			if m == "WATCHDOG=1" {
				pings++
			}
		case <-deadline:
			t.Fatalf("no %q on the notify socket within %s", want, within)
		}
	}
}

// chanSource emits what is sent on its channel.
type chanSource chan verify.Credential

func (c chanSource) String() string { return "chan source" }
func (c chanSource) Run(ctx context.Context, emit func(verify.Credential, time.Time)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case cr := <-c:
			emit(cr, time.Now())
		}
	}
}

// blockingDecider blocks every decision until release is closed.
type blockingDecider struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingDecider) Decide(context.Context, verify.Credential, string) verify.Decision {
	b.entered <- struct{}{}
	<-b.release
	return verify.Decision{Verdict: verify.Deny, Reason: verify.ReasonHealthCodeRed, Mode: verify.ModeOnline}
}

func TestWatchdogPingsStopWhenPipelineStalls(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "400000") // 400ms: pings every 100ms, stall after 200ms

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dec := &blockingDecider{entered: make(chan struct{}, 1), release: make(chan struct{})}
	p := pipeline.New(pipeline.Options{Unit: record.Unit{Prefix: "t", Venue: "v1", Device: "d1"}, Decider: dec, Store: queuetest.New(),
		Barrier: noBarrier{}, Log: log, LivenessTick: 10 * time.Millisecond})
	w, err := newWatchdog(p.LastActive, 10*time.Millisecond, log)
	if err != nil || w == nil {
		t.Fatalf("watchdog: %v, %v", w, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wdDone := make(chan error, 1)
	go func() { wdDone <- w.run(ctx) }()

	src := make(chanSource)
	pipeDone := make(chan error, 1)
	w.up()
	go func() { pipeDone <- p.Run(ctx, src) }()

	sock.waitFor(t, "READY=1", 5*time.Second)
	for range 3 {
		sock.waitFor(t, "WATCHDOG=1", 5*time.Second)
	}

	// A decision that never returns: the loop stops turning, and the pings must stop.
	src <- verify.Credential{Kind: verify.KindQR, QRToken: "HC-STUCK"}
	<-dec.entered
	sock.waitFor(t, "STATUS=pipeline stalled", 5*time.Second)
	stuckAt := p.LastActive()
	// Watch five ping periods: not one ping may come while the pipeline is stuck.
	window := time.After(500 * time.Millisecond)
watch:
	for {
		select {
		case m := <-sock.msgs:
			if m == "WATCHDOG=1" {
				t.Fatal("a watchdog ping was sent while the pipeline was stuck")
			}
		case <-window:
			break watch
		}
	}
	if !p.LastActive().Equal(stuckAt) {
		t.Fatal("LastActive advanced while the decision was stuck")
	}

	// The decision returns: the loop turns again and the pings resume.
	close(dec.release)
	sock.waitFor(t, "STATUS=pipeline up", 5*time.Second)
	sock.waitFor(t, "WATCHDOG=1", 5*time.Second)

	cancel()
	if err := <-pipeDone; err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	if err := <-wdDone; err != nil {
		t.Fatalf("watchdog: %v", err)
	}
	sock.waitFor(t, "STOPPING=1", 5*time.Second)
}

// noBarrier is a lane without a barrier.
type noBarrier struct{}

func (noBarrier) Plan(bool) (string, string)                  { return record.GateNoBarrier, "" }
func (noBarrier) Open(context.Context) (time.Duration, error) { return 0, nil }

func TestWatchdogOffWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	w, err := newWatchdog(time.Now, 0, slog.Default())
	if w != nil || err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v, %v, want nothing", w, err)
	}
}

func TestWatchdogBadInterval(t *testing.T) {
	listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "soon")
	_, err := newWatchdog(time.Now, 0, slog.Default())
	if err == nil || !strings.Contains(err.Error(), "WATCHDOG_USEC") {
		t.Fatalf("err = %v, want one naming WATCHDOG_USEC", err)
	}
}

// READY without a watchdog interval: systemd asked for notifications only.
func TestWatchdogReadyOnly(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "")
	w, err := newWatchdog(time.Now, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || w == nil {
		t.Fatal(w, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.run(ctx) }()
	w.up()
	sock.waitFor(t, "READY=1", 5*time.Second)
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if n := sock.waitFor(t, "STOPPING=1", 5*time.Second); n != 0 {
		t.Errorf("%d watchdog pings without WATCHDOG_USEC", n)
	}
}
