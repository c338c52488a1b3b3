package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

func testLogger(t testing.TB) (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// fakeAck is a publish outcome that is already decided.
type fakeAck struct {
	done chan struct{}
	err  error
}

func (a *fakeAck) Done() <-chan struct{} { return a.done }
func (a *fakeAck) Error() error          { return a.err }

type published struct {
	conn  int
	topic string
	seq   int64
}

// fakeBroker hands out fake connections and records every publish in order.
type fakeBroker struct {
	mu        sync.Mutex
	dials     []string // broker URLs in dial order
	refuse    func(n int, broker string) error
	failAt    map[int]int // conn number -> index of the publish whose ack fails
	conns     []*fakeConn
	published []published
	// hold, if set, is called by Publish (without the lock) before it returns; a test blocks
	// in it to stop the uplink mid-publish.
	hold func(i int)
}

func (f *fakeBroker) dial(_ context.Context, broker string, _ UplinkConfig) (conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dials = append(f.dials, broker)
	if f.refuse != nil {
		if err := f.refuse(len(f.dials), broker); err != nil {
			return nil, err
		}
	}
	c := &fakeConn{f: f, n: len(f.conns) + 1, lost: make(chan struct{}), failAt: -1}
	if i, ok := f.failAt[c.n]; ok {
		c.failAt = i
	}
	f.conns = append(f.conns, c)
	return c, nil
}

func (f *fakeBroker) snapshot() []published {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]published(nil), f.published...)
}

type fakeConn struct {
	f        *fakeBroker
	n        int
	sent     int
	failAt   int
	lost     chan struct{}
	lostOnce sync.Once
}

func (c *fakeConn) Publish(topic string, payload []byte) ack {
	var seq int64
	fmt.Sscanf(string(payload), `{"seq":%d`, &seq)
	c.f.mu.Lock()
	c.f.published = append(c.f.published, published{conn: c.n, topic: topic, seq: seq})
	i := c.sent
	c.sent++
	hold := c.f.hold
	c.f.mu.Unlock()
	if hold != nil {
		hold(i)
	}
	a := &fakeAck{done: make(chan struct{})}
	if i == c.failAt {
		a.err = errors.New("fake: publish failed")
	}
	if topic == "" || strings.ContainsAny(topic, "+#") || !utf8.ValidString(topic) {
		// As Mosquitto does: a PUBLISH to a topic it cannot take closes the connection.
		a.err = errors.New("fake: malformed PUBLISH topic: connection closed")
		c.drop()
	}
	close(a.done)
	return a
}

func (c *fakeConn) Lost() <-chan struct{} { return c.lost }
func (c *fakeConn) Disconnect()           { c.drop() }
func (c *fakeConn) drop()                 { c.lostOnce.Do(func() { close(c.lost) }) }

// runUplink starts u.Run and returns a stop func that cancels it and checks it returned nil.
func runUplink(t *testing.T, u *Uplink) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- u.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Run returned %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// deliveries counts OnDelivered calls and lets a test wait for a number of them.
type deliveries struct {
	mu      sync.Mutex
	entries []Entry
	changed chan struct{}
}

func newDeliveries() *deliveries { return &deliveries{changed: make(chan struct{}, 1)} }

func (d *deliveries) add(e Entry) {
	d.mu.Lock()
	d.entries = append(d.entries, e)
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

func (d *deliveries) wait(t *testing.T, n int, timeout time.Duration) []Entry {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		got := append([]Entry(nil), d.entries...)
		d.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-d.changed:
		case <-deadline.C:
			t.Fatalf("%d of %d entries delivered after %v", len(got), n, timeout)
		}
	}
}

// waitUntil polls cond every few milliseconds until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fastBackoff(cfg UplinkConfig) UplinkConfig {
	cfg.BackoffBase, cfg.BackoffCap = time.Millisecond, 5*time.Millisecond
	return cfg
}

func TestUplinkResendsFromFirstUnacked(t *testing.T) {
	o, _ := openTemp(t, Options{})
	for range 10 {
		mustAppend(t, o, "s")
	}
	fb := &fakeBroker{failAt: map[int]int{1: 3}} // the 4th publish on connection 1 fails
	d := newDeliveries()
	log, _ := testLogger(t)
	u := NewUplink(o, fastBackoff(UplinkConfig{Brokers: []string{"tcp://fake:1883"}, OnDelivered: d.add, Logger: log}))
	u.dial = fb.dial
	stop := runUplink(t, u)
	got := d.wait(t, 10, 10*time.Second)
	stop()

	for i, e := range got {
		if e.Seq != int64(i+1) || e.DeliveredAt.IsZero() {
			t.Fatalf("delivery %d: seq %d delivered_at %v, want seq %d", i, e.Seq, e.DeliveredAt, i+1)
		}
	}
	var conn1, conn2 []int64
	for _, p := range fb.snapshot() {
		if p.topic != "sentinel/test/s" {
			t.Errorf("published to %q", p.topic)
		}
		switch p.conn {
		case 1:
			conn1 = append(conn1, p.seq)
		case 2:
			conn2 = append(conn2, p.seq)
		}
	}
	if fmt.Sprint(conn1) != "[1 2 3 4 5 6 7 8 9 10]" || fmt.Sprint(conn2) != "[4 5 6 7 8 9 10]" {
		t.Fatalf("connection 1 sent %v, connection 2 sent %v; want all, then a resend from 4", conn1, conn2)
	}
	for seq := int64(1); seq <= 10; seq++ {
		var attempts int
		if err := o.db.QueryRow(`SELECT attempts FROM outbox WHERE stream = 's' AND seq = ?`, seq).Scan(&attempts); err != nil {
			t.Fatal(err)
		}
		want := 1
		if seq >= 4 {
			want = 2
		}
		if attempts != want {
			t.Errorf("seq %d: attempts %d, want %d", seq, attempts, want)
		}
	}
	if s, _ := o.Stats(context.Background()); s.Pending != 0 || s.Delivered != 10 {
		t.Fatalf("Stats = %+v", s)
	}
}

func TestUplinkOutageLoggedOnce(t *testing.T) {
	o, _ := openTemp(t, Options{})
	var mu sync.Mutex
	down := true
	setDown := func(v bool) { mu.Lock(); down = v; mu.Unlock() }
	fb := &fakeBroker{refuse: func(n int, broker string) error {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return errors.New("connection refused")
		}
		return nil
	}}
	log, logs := testLogger(t)
	u := NewUplink(o, fastBackoff(UplinkConfig{Brokers: []string{"tcp://10.9.9.9:1883"}, Logger: log}))
	u.dial = fb.dial
	runUplink(t, u)

	waitUntil(t, 5*time.Second, "10 failed dials", func() bool { fb.mu.Lock(); defer fb.mu.Unlock(); return len(fb.dials) >= 10 })
	if u.Connected() {
		t.Fatal("Connected while the broker is down")
	}
	setDown(false)
	waitUntil(t, 5*time.Second, "connected", u.Connected)
	warns := strings.Count(logs.String(), "level=WARN")
	line := logs.String()
	if warns != 1 || !strings.Contains(line, "tcp://10.9.9.9:1883") || !strings.Contains(line, "connection refused") {
		t.Fatalf("want exactly one WARN naming the broker and the reason, got:\n%s", line)
	}

	// A connection loss followed by failing reconnects is one more outage: one more WARN.
	setDown(true)
	fb.mu.Lock()
	c := fb.conns[len(fb.conns)-1]
	n := len(fb.dials)
	fb.mu.Unlock()
	c.drop()
	waitUntil(t, 5*time.Second, "5 failed redials", func() bool { fb.mu.Lock(); defer fb.mu.Unlock(); return len(fb.dials) >= n+5 })
	setDown(false)
	waitUntil(t, 5*time.Second, "reconnected", u.Connected)
	if warns := strings.Count(logs.String(), "level=WARN"); warns != 2 {
		t.Fatalf("after one connection loss: %d WARN lines, want 2:\n%s", warns, logs.String())
	}
}

func TestUplinkFailover(t *testing.T) {
	o, _ := openTemp(t, Options{})
	for range 3 {
		mustAppend(t, o, "s")
	}
	fb := &fakeBroker{refuse: func(_ int, broker string) error {
		if broker == "tcp://primary:1883" {
			return errors.New("no route to host")
		}
		return nil
	}}
	d := newDeliveries()
	log, logs := testLogger(t)
	u := NewUplink(o, fastBackoff(UplinkConfig{Brokers: []string{"tcp://primary:1883", "tcp://secondary:1883"}, OnDelivered: d.add, Logger: log}))
	u.dial = fb.dial
	stop := runUplink(t, u)
	d.wait(t, 3, 5*time.Second)
	stop()
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if len(fb.dials) < 2 || fb.dials[0] != "tcp://primary:1883" || fb.dials[1] != "tcp://secondary:1883" {
		t.Fatalf("dials = %v, want primary then secondary", fb.dials)
	}
	if !strings.Contains(logs.String(), "fallback broker") || !strings.Contains(logs.String(), "no route to host") {
		t.Fatalf("failover not logged:\n%s", logs.String())
	}
}

func TestUplinkRunConfig(t *testing.T) {
	o, _ := openTemp(t, Options{})
	if err := NewUplink(o, UplinkConfig{}).Run(context.Background()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Run without brokers: %v, want ErrInvalid", err)
	}
	u := NewUplink(o, UplinkConfig{Brokers: []string{"tcp://x:1"}})
	if u.cfg.Window != 32 || u.cfg.BackoffBase != 250*time.Millisecond || u.cfg.BackoffCap != 30*time.Second || u.cfg.ClientID == "" {
		t.Fatalf("defaults: %+v", u.cfg)
	}
}

func TestBackoffFullJitter(t *testing.T) {
	u := NewUplink(nil, UplinkConfig{BackoffBase: 100 * time.Millisecond, BackoffCap: time.Second})
	tests := []struct {
		attempt int
		limit   time.Duration
	}{
		{0, 100 * time.Millisecond},
		{1, 200 * time.Millisecond},
		{3, 800 * time.Millisecond},
		{4, time.Second},
		{63, time.Second},
		{1000, time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.attempt), func(t *testing.T) {
			var maxSeen time.Duration
			for range 2000 {
				d := u.backoff(tt.attempt)
				if d < 0 || d > tt.limit {
					t.Fatalf("backoff(%d) = %v, want within [0, %v]", tt.attempt, d, tt.limit)
				}
				maxSeen = max(maxSeen, d)
			}
			if maxSeen < tt.limit/2 {
				t.Fatalf("backoff(%d) never above %v: not spread over [0, %v]", tt.attempt, maxSeen, tt.limit)
			}
		})
	}
}

// TestUplinkPriorityStreams: records of the event and alert streams go ahead of the others,
// live and backlog alike, and each stream stays in seq order.
func TestUplinkPriorityStreams(t *testing.T) {
	o, _ := openTemp(t, Options{})
	// The backlog: passages, then an event and an alert.
	for range 5 {
		mustAppend(t, o, "passage")
	}
	mustAppend(t, o, "event")
	mustAppend(t, o, "alert")

	inHold, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fb := &fakeBroker{}
	fb.hold = func(i int) {
		if i == 7 { // the first live record: hold the uplink while more are committed
			once.Do(func() { close(inHold) })
			<-release
		}
	}
	d := newDeliveries()
	log, _ := testLogger(t)
	u := NewUplink(o, fastBackoff(UplinkConfig{Brokers: []string{"tcp://fake:1883"}, Window: 4, OnDelivered: d.add, Logger: log}))
	u.dial = fb.dial
	stop := runUplink(t, u)
	d.wait(t, 7, 10*time.Second) // the backlog
	mustAppend(t, o, "audit")    // live; its publish is held
	<-inHold
	// Committed while the uplink is held: live routine records, then live priority ones.
	for range 3 {
		mustAppend(t, o, "passage")
	}
	mustAppend(t, o, "audit")
	mustAppend(t, o, "event")
	mustAppend(t, o, "alert")
	close(release)
	d.wait(t, 14, 10*time.Second)
	stop()

	var got []string
	for _, p := range fb.snapshot() {
		got = append(got, fmt.Sprintf("%s:%d", strings.TrimPrefix(p.topic, "sentinel/test/"), p.seq))
	}
	want := "[event:1 alert:1 passage:1 passage:2 passage:3 passage:4 passage:5 " + // backlog: priority first
		"audit:1 " + // live, published before the others were committed
		"event:2 alert:2 passage:6 passage:7 passage:8 audit:2]" // live: priority first
	if fmt.Sprint(got) != want {
		t.Fatalf("published %v\nwant      %s", got, want)
	}
}

// TestUplinkKeepsConnectionWhileMarksFail: with the disk full (here: the database read-only)
// and the broker up, only the delivery marks fail. The uplink keeps its connection and window
// (each record is published once, not the whole backlog again on reconnect after reconnect),
// logs the failure once, and marks the records when writing works again. Past maxUnmarked
// records waiting for their marks, the window stops taking more (memory stays bounded).
func TestUplinkKeepsConnectionWhileMarksFail(t *testing.T) {
	const n, window = 40, 4
	tests := []struct {
		name      string
		unmarked  int64 // maxUnmarked
		published int   // how many are published while the marks fail, at most
	}{
		{name: "unbounded", unmarked: 10000, published: n},
		{name: "bounded", unmarked: 8, published: 8 + window},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oldRetry, oldMax := markRetry, maxUnmarked
			markRetry, maxUnmarked = 20*time.Millisecond, tt.unmarked
			t.Cleanup(func() { markRetry, maxUnmarked = oldRetry, oldMax })
			log, logs := testLogger(t)
			o, _ := openTemp(t, Options{Logger: log})
			for range n {
				mustAppend(t, o, "s")
			}
			readOnly(t, o, true)
			fb := &fakeBroker{}
			d := newDeliveries()
			u := NewUplink(o, fastBackoff(UplinkConfig{Brokers: []string{"tcp://fake:1883"}, Window: window, OnDelivered: d.add, Logger: log}))
			u.dial = fb.dial
			stop := runUplink(t, u)
			waitUntil(t, 10*time.Second, "records published", func() bool { return len(fb.snapshot()) >= min(n, int(tt.unmarked)) })
			time.Sleep(100 * time.Millisecond) // several mark retries, which fail
			if p := len(fb.snapshot()); p > tt.published {
				t.Fatalf("%d published while marks fail, want at most %d", p, tt.published)
			}
			if st, _ := o.Stats(context.Background()); st.Pending != n {
				t.Fatalf("%d pending while marks fail, want %d (nothing can be marked)", st.Pending, n)
			}
			readOnly(t, o, false)
			d.wait(t, n, 10*time.Second)
			stop()

			if c := len(fb.conns); c != 1 {
				t.Errorf("%d connections, want 1: failing marks must not end the connection", c)
			}
			if p := len(fb.snapshot()); p != n {
				t.Errorf("%d publishes, want %d: each record once", p, n)
			}
			if st, _ := o.Stats(context.Background()); st.Pending != 0 || st.Delivered != n {
				t.Errorf("stats %+v, want every record marked delivered", st)
			}
			if c := strings.Count(logs.String(), "delivery marks could NOT be written"); c != 1 {
				t.Errorf("%d log lines about the failing marks, want 1:\n%s", c, logs)
			}
			if !strings.Contains(logs.String(), "delivery marks are written again") {
				t.Errorf("no log line when the marks are written again:\n%s", logs)
			}
		})
	}
}
