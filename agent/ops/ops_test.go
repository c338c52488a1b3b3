package ops

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sentinel-edge/sentinel/agent/pipeline"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

func outcome(reason, mode string, calls ...verify.Call) pipeline.Outcome {
	return pipeline.Outcome{Record: record.Passage{Verdict: verify.Deny, Reason: reason, Mode: mode, Gate: record.GateNotOpened}, Committed: true, Calls: calls}
}

func TestStatusContent(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	f := newFixture(t, t.TempDir(), priv, nil)
	f.o.ReaderUp("qr")
	s := f.o.Status(context.Background())
	b, _ := json.Marshal(s)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for _, k := range []string{"online", "unit", "location", "brand", "style", "install_status", "docked", "version", "queue_pending"} {
		if _, ok := m[k]; !ok {
			t.Errorf("status lacks %q: %s", k, b)
		}
	}
	if s.Docked || s.Platform != record.PlatformUnknown || s.Style != "闸机一体机" || s.Readers["qr"] != "online" ||
		s.FireAlarm != record.FireAlarmUnknown || s.Mode != record.GateModeNormal {
		t.Errorf("status %s", b)
	}
	sig := significant(s)
	f.o.Passage(outcome(verify.ReasonOK, verify.ModeOnline, verify.Call{Interface: "qr", Status: 200, Latency: time.Millisecond}))
	s2 := f.o.Status(context.Background())
	// A call proves the platform answers; without a docking verification the unit is not
	// docked, and says why (issue #14).
	if s2.Docked || s2.Platform != record.PlatformOnline || s2.LastPlatformOK == "" || significant(s2) == sig ||
		s2.Docking == nil || !strings.Contains(strings.Join(s2.Docking.Why, ";"), "no docking verification") {
		t.Errorf("after a successful call: docked=%v platform=%s docking %+v", s2.Docked, s2.Platform, s2.Docking)
	}
	f.o.mu.Lock()
	f.o.evidence.platformCheck = &record.SelftestState{OK: true, At: record.TS(time.Now()), Source: record.SelftestPlatform, Version: "v1"}
	f.o.mu.Unlock()
	if s := f.o.Status(context.Background()); !s.Docked || s.Docking.Check != record.SelftestPlatform || s.Progress.Step != 3 {
		t.Errorf("with a passed platform check: docked=%v docking %+v progress %+v", s.Docked, s.Docking, s.Progress)
	}
	f.o.recordSelftest(record.SelftestState{OK: false, At: record.TS(time.Now()), Failed: []string{"barrier relay"}, Source: record.SelftestCommand})
	if s3 := f.o.Status(context.Background()); s3.Docked {
		t.Error("a failed selftest leaves the unit docked")
	}
	f.o.Passage(outcome(verify.ReasonPlatformUnreachable, verify.ModeOffline, verify.Call{Interface: "qr"}))
	if s4 := f.o.Status(context.Background()); s4.Platform != record.PlatformOffline {
		t.Errorf("platform %s after an unreachable call", s4.Platform)
	}
	f.o.Passage(outcome(verify.ReasonMalformedScan, verify.ModeOnline)) // no call: says nothing of the platform
	if s5 := f.o.Status(context.Background()); s5.Platform != record.PlatformOffline {
		t.Errorf("platform %s after a passage without a call", s5.Platform)
	}
	later := f.o.Status(context.Background())
	later.TS, later.QueueOldestAge = "2099-01-01T00:00:00.000Z", 99
	if significant(later) != significant(f.o.Status(context.Background())) {
		t.Error("the time and the queue's age must not count as a change")
	}
	// A reader going offline is an event and shows at once.
	f.o.ReaderState("idcard")(false, errors.New("read /dev/ttyUSB1: EOF"))
	if s6 := f.o.Status(context.Background()); s6.Readers["idcard"] != "offline" {
		t.Errorf("readers %v", s6.Readers)
	}
	if evs := f.events(t, 1); len(evs) != 1 || evs[0].Type != record.EventReaderOffline || evs[0].Source != "idcard" || evs[0].Detail == "" {
		t.Errorf("events %+v", evs)
	}
	// A face trigger's stream that stalls is camera_offline, and the status says so; its
	// first frame at start is no event.
	f.o.CameraState()(true, nil)
	if s7 := f.o.Status(context.Background()); s7.Readers["camera"] != "online" {
		t.Errorf("readers %v after the first frame", s7.Readers)
	}
	f.o.CameraState()(false, errors.New("camera: no frame within camera.stall"))
	if s7 := f.o.Status(context.Background()); s7.Readers["camera"] != "offline" {
		t.Errorf("readers %v after a stall", s7.Readers)
	}
	f.o.CameraState()(true, nil)
	if s8 := f.o.Status(context.Background()); s8.Readers["camera"] != "online" {
		t.Errorf("readers %v after frames came back", s8.Readers)
	}
	if evs := f.events(t, 3); len(evs) != 3 || evs[1].Type != record.EventCameraOffline || evs[1].Source != "camera" ||
		!strings.Contains(evs[1].Detail, "camera.stall") || evs[2].Type != record.EventCameraOnline || evs[2].Detail != "" {
		t.Errorf("events %+v", evs)
	}
}

// TestListenerPortTaken: a taken port does not stop the part; it binds once the port frees.
func TestListenerPortTaken(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	f := newFixture(t, t.TempDir(), priv, func(o *Options) { o.Timing.BindRetry = 10 * time.Millisecond })
	squat, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := squat.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	bound := make(chan net.Listener, 1)
	done := make(chan error, 1)
	go func() {
		done <- f.o.serveLoopback(ctx, "metrics.listen", addr, false, http.NotFoundHandler(), func(l net.Listener) { bound <- l })
	}()
	select {
	case <-bound:
		t.Fatal("bound a taken port")
	case <-time.After(50 * time.Millisecond):
	}
	squat.Close()
	select {
	case l := <-bound:
		if l.Addr().String() != addr {
			t.Errorf("bound %s, want %s", l.Addr(), addr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("never bound after the port was freed")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serveLoopback: %v", err)
	}
	if _, err := f.o.listenLoopback("screen.listen", "0.0.0.0:0", false); err == nil {
		t.Error("a non-loopback address was bound without allow_remote")
	}
}

// subToken is a finished SUBACK with a result, like paho's SubscribeToken.
type subToken struct {
	err    error
	result map[string]byte
}

func (t subToken) Wait() bool                     { return true }
func (t subToken) WaitTimeout(time.Duration) bool { return true }
func (t subToken) Done() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
func (t subToken) Error() error            { return t.err }
func (t subToken) Result() map[string]byte { return t.result }

func grantedToken(filter string, rc byte) mqtt.Token {
	return subToken{result: map[string]byte{filter: rc}}
}
func failedToken(err error) mqtt.Token { return subToken{err: err} }

// subClient is an mqtt.Client whose Subscribe answers from a script.
type subClient struct {
	mqtt.Client // the rest is not used
	mu          sync.Mutex
	answers     []func(filter string) mqtt.Token
	calls       int
}

func (c *subClient) Subscribe(filter string, _ byte, _ mqtt.MessageHandler) mqtt.Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.answers[min(c.calls, len(c.answers)-1)]
	c.calls++
	return a(filter)
}
func (c *subClient) IsConnectionOpen() bool { return true }

// TestCommandSubscription: a subscription the broker refuses (SUBACK 0x80, which paho does
// not report as an error) or that fails is not taken for granted: it is counted as not
// subscribed and tried again until the broker grants it.
func TestCommandSubscription(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	f := newFixture(t, t.TempDir(), priv, func(o *Options) { o.Timing.SubscribeRetry = time.Millisecond })
	c := newControl(f.o)
	filter := f.o.unit.Topic(record.KindCommand) + "/+"

	if err := subscribe(&subClient{answers: []func(string) mqtt.Token{func(f string) mqtt.Token { return grantedToken(f, 0x80) }}}, filter, time.Second, nil); err == nil ||
		!strings.Contains(err.Error(), "refused by the broker") {
		t.Errorf("a refused SUBACK: %v", err)
	}
	cl := &subClient{answers: []func(string) mqtt.Token{
		func(f string) mqtt.Token { return grantedToken(f, 0x80) },
		func(string) mqtt.Token { return failedToken(errors.New("not connected")) },
		func(f string) mqtt.Token { return grantedToken(f, 1) },
	}}
	done := make(chan bool, 1)
	go func() { done <- c.subscribeCommands(cl, filter) }()
	select {
	case ok := <-done:
		if !ok || cl.calls != 3 {
			t.Errorf("subscribed=%v after %d attempts, want true after 3", ok, cl.calls)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("never subscribed")
	}
	if v := counterValue(t, f.o, "sentinel_commands_subscribed", nil); v != 1 {
		t.Errorf("sentinel_commands_subscribed %v, want 1", v)
	}

	// Refused for good: the loop ends when the control connection stops.
	never := &subClient{answers: []func(string) mqtt.Token{func(f string) mqtt.Token { return grantedToken(f, 0x80) }}}
	go func() { done <- c.subscribeCommands(never, filter) }()
	deadline := time.Now().Add(5 * time.Second)
	for counterValue(t, f.o, "sentinel_commands_subscribed", nil) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a refused subscription still counts as subscribed")
		}
		time.Sleep(time.Millisecond)
	}
	close(c.stopped)
	select {
	case ok := <-done:
		if ok {
			t.Error("a refused subscription reported success")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the retry loop outlived the control connection")
	}
}

// refusingBroker accepts TCP connections, reads the CONNECT and answers CONNACK 0x05 (not
// authorised), counting the attempts.
func refusingBroker(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				buf := make([]byte, 512)
				if _, err := c.Read(buf); err != nil {
					return
				}
				_, _ = c.Write([]byte{0x20, 0x02, 0x00, 0x05})
			}()
		}
	}()
	return "tcp://" + l.Addr().String(), &n
}

// logBuf is a log sink tests can read.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestControlBacksOff: against a broker that refuses the client, the control connection
// backs off with the uplink's jittered backoff (uplink.backoff_base/cap) instead of
// reconnecting about twice a second, and says why at WARN.
func TestControlBacksOff(t *testing.T) {
	url, attempts := refusingBroker(t)
	_, priv, _ := ed25519.GenerateKey(nil)
	logs := &logBuf{}
	f := newFixture(t, t.TempDir(), priv, func(o *Options) {
		o.Control = queue.UplinkConfig{Brokers: []string{url}, ClientID: "sentinel-test", BackoffBase: 20 * time.Second, BackoffCap: 20 * time.Second}
		o.Timing.ControlTimeout = time.Second
		o.Log = slogTo(logs)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.o.Run(ctx) }()
	time.Sleep(3 * time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Delays are uniform in [0, 20s]: within 3s the first attempt and rarely one or two more
	// without backoff (a fixed 1s retry, or paho's own) there were 3 to 6.
	if n := attempts.Load(); n < 1 || n > 3 {
		t.Errorf("%d connection attempts in 3s, want 1 to 3 (a 20s backoff cap)", n)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "control connection: cannot connect") || !strings.Contains(l, "not Authorized") {
		t.Errorf("no WARN with the reason in the log:\n%s", l)
	}
}

// TestScreenClientGoneLaneMoves: a browser that leaves mid-stream is forgotten and counted,
// the browser that stays still gets every verdict, and the passages never wait for the screen.
func TestScreenClientGoneLaneMoves(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	port := freeLoopbackPort(t)
	f := newFixture(t, t.TempDir(), priv, func(o *Options) { o.Cfg.Screen.Listen = fmt.Sprintf("127.0.0.1:%d", port) })
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); f.o.serveScreen(ctx) }()
	defer func() { cancel(); <-runDone }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
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

	for range 20 {
		start := time.Now()
		f.o.Passage(outcome(verify.ReasonOK, verify.ModeOnline, verify.Call{Interface: "qr", Status: 200}))
		if took := time.Since(start); took > time.Second {
			t.Errorf("a passage waited %s for the screen", took)
		}
		nextEvent(t, staySc, "verdict")
		time.Sleep(5 * time.Millisecond) // a lane's pace: one passage after another
	}
	deadline = time.Now().Add(5 * time.Second)
	for counterValue(t, f.o, "sentinel_screen_disconnects_total", map[string]string{"why": "closed"}) != 1 ||
		counterValue(t, f.o, "sentinel_screen_clients", nil) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("disconnects closed=%v clients=%v, want 1 and 1",
				counterValue(t, f.o, "sentinel_screen_disconnects_total", map[string]string{"why": "closed"}),
				counterValue(t, f.o, "sentinel_screen_clients", nil))
		}
		time.Sleep(10 * time.Millisecond)
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
