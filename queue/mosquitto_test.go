package queue

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/mqtttest"
)

// seqsOf decodes the seq of every message (payloads come from payloadOf).
func seqsOf(t *testing.T, msgs []mqtttest.Message) []int64 {
	t.Helper()
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		var p struct {
			Seq int64  `json:"seq"`
			ID  string `json:"id"`
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatalf("message %d on %s: %v", i, m.Topic, err)
		}
		out[i] = p.Seq
	}
	return out
}

func TestUplinkMosquittoInOrder(t *testing.T) {
	broker := mqtttest.Start(t)
	col := broker.Subscribe(t, "sentinel/#")
	o, _ := openTemp(t, Options{})
	const n = 200
	for range n / 2 { // half before the uplink starts, half while it runs
		mustAppend(t, o, "s")
	}
	d := newDeliveries()
	log, logs := testLogger(t)
	u := NewUplink(o, UplinkConfig{Brokers: []string{broker.URL()}, ClientID: "sentinel-test", Window: 16, OnDelivered: d.add, Logger: log})
	stop := runUplink(t, u)
	for range n / 2 {
		mustAppend(t, o, "s")
	}
	d.wait(t, n, 20*time.Second)
	msgs := col.WaitN(n, 10*time.Second)
	stop()

	seqs := seqsOf(t, msgs)
	if len(seqs) != n {
		t.Fatalf("subscriber got %d messages, want %d", len(seqs), n)
	}
	for i := range msgs {
		if msgs[i].Topic != "sentinel/test/s" {
			t.Fatalf("message %d on %s", i, msgs[i].Topic)
		}
	}
	// The first half was the backlog when the uplink connected; live records overtake it.
	// Each class arrives in seq order.
	if h := backlogSplit(seqs); h < n/2 {
		t.Fatalf("arrivals %v are not a backlog 1..H (H >= %d) and live records H+1.., each in order", seqs, n/2)
	}
	st, err := o.Stats(context.Background())
	if err != nil || st.Pending != 0 || st.Delivered != n || st.LastDelivery.IsZero() {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
	if strings.Contains(logs.String(), `"seq"`) {
		t.Fatalf("a payload was logged:\n%s", logs.String())
	}
}

// backlogSplit returns the H for which seqs is exactly 1..len(seqs), with the seqs <= H in
// increasing order and the seqs > H in increasing order (the backlog and the live records of
// one connection), or -1 when there is none. The smallest such H is returned.
func backlogSplit(seqs []int64) int {
	seen := make(map[int64]bool, len(seqs))
	for _, s := range seqs {
		if s < 1 || s > int64(len(seqs)) || seen[s] {
			return -1
		}
		seen[s] = true
	}
	for h := 0; h <= len(seqs); h++ {
		var lastLow, lastHigh int64 = 0, int64(h)
		ok := true
		for _, s := range seqs {
			if s <= int64(h) {
				ok = ok && s == lastLow+1
				lastLow = s
			} else {
				ok = ok && s == lastHigh+1
				lastHigh = s
			}
			if !ok {
				break
			}
		}
		if ok {
			return h
		}
	}
	return -1
}

// TestUplinkMosquittoRestart stops the broker while appends go on, then starts it again.
//
// What is provable: the broker has no persistence, so anything it acknowledged but had not
// yet forwarded when it stopped is lost for the subscriber, and anything published before
// the subscriber has resubscribed to the new broker is too. The test therefore (1) stops the
// broker only once the subscriber has everything acknowledged so far, and (2) holds the
// uplink's reconnect (a gate around the real paho dialer) until the subscriber has
// resubscribed. Then every record must reach the subscriber at least once, first
// occurrences in seq order, and every record must end up marked delivered exactly once.
func TestUplinkMosquittoRestart(t *testing.T) {
	broker := mqtttest.Start(t)
	col := broker.Subscribe(t, "sentinel/#")
	o, _ := openTemp(t, Options{})
	ctx := context.Background()

	var gateOpen atomic.Bool
	gateOpen.Store(true)
	d := newDeliveries()
	log, logs := testLogger(t)
	u := NewUplink(o, UplinkConfig{
		Brokers:     []string{broker.URL()},
		ClientID:    "sentinel-restart",
		Window:      8,
		BackoffBase: 5 * time.Millisecond,
		BackoffCap:  50 * time.Millisecond,
		OnDelivered: d.add,
		Logger:      log,
	})
	u.dial = func(ctx context.Context, b string, cfg UplinkConfig) (conn, error) {
		if !gateOpen.Load() {
			return nil, errors.New("test: gate closed")
		}
		return dialPaho(ctx, b, cfg)
	}
	stop := runUplink(t, u)

	// Phase 1: 100 records, all through to the subscriber.
	const first = 100
	for range first {
		mustAppend(t, o, "s")
	}
	d.wait(t, first, 20*time.Second)
	if got := col.WaitN(first, 10*time.Second); len(got) < first {
		t.Fatalf("phase 1: subscriber got %d of %d", len(got), first)
	}

	// Phase 2: the broker goes away while appends continue.
	gateOpen.Store(false)
	appending := make(chan struct{})
	appended := make(chan int)
	go func() {
		n := 0
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-appending:
				appended <- n
				return
			case <-tick.C:
				if _, err := o.Append(ctx, "s", "sentinel/test/s", payloadOf); err != nil {
					t.Errorf("append during outage: %v", err)
				}
				n++
			}
		}
	}()
	broker.Stop()
	waitUntil(t, 10*time.Second, "the uplink to notice the outage", func() bool { return !u.Connected() })
	<-time.After(time.Second) // the outage itself; appends continue meanwhile

	broker.Start()
	if !col.WaitSubscribes(2, 10*time.Second) {
		t.Fatalf("subscriber did not resubscribe; broker output:\n%s", broker.Output())
	}
	gateOpen.Store(true)
	waitUntil(t, 10*time.Second, "the uplink to reconnect", u.Connected)
	<-time.After(200 * time.Millisecond) // appends continue on the new connection
	close(appending)
	total := first + <-appended

	delivered := d.wait(t, total, 20*time.Second)
	waitUntil(t, 10*time.Second, "the subscriber to receive every seq", func() bool {
		seen := make(map[int64]bool)
		for _, s := range seqsOf(t, col.Messages()) {
			seen[s] = true
		}
		return len(seen) == total
	})
	stop()

	// Every seq at least once at the subscriber; first occurrences in order.
	seen := make(map[int64]bool)
	var firsts []int64
	dups := 0
	for _, s := range seqsOf(t, col.Messages()) {
		if seen[s] {
			dups++
			continue
		}
		seen[s] = true
		firsts = append(firsts, s)
	}
	if len(firsts) != total {
		t.Fatalf("subscriber saw %d distinct seqs, want %d", len(firsts), total)
	}
	// The records of phase 1 arrived in order; after the reconnect the backlog (what was
	// stored during the outage) and the live records each arrive in order, the live ones
	// first.
	if backlogSplit(firsts[:first]) < 0 {
		t.Fatalf("phase 1: first occurrences are not a backlog 1..H and live records H+1.., each in order: %v", firsts[:first])
	}
	after := make([]int64, 0, total-first)
	for _, s := range firsts[first:] {
		after = append(after, s-first)
	}
	if backlogSplit(after) < 0 {
		t.Fatalf("after the outage: first occurrences are not a backlog and live records, each in order: %v", firsts[first:])
	}
	// Every record marked delivered exactly once.
	if len(delivered) != total {
		t.Fatalf("%d deliveries reported, want %d", len(delivered), total)
	}
	marked := make(map[int64]bool)
	for _, e := range delivered {
		if marked[e.Seq] {
			t.Fatalf("seq %d marked delivered twice", e.Seq)
		}
		marked[e.Seq] = true
	}
	st, err := o.Stats(ctx)
	if err != nil || st.Pending != 0 || st.Delivered != int64(total) {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
	if n := strings.Count(logs.String(), `msg="uplink: connection lost`); n != 1 {
		t.Errorf("%d 'connection lost' log lines for one outage, want 1:\n%s", n, logs.String())
	}
	t.Logf("%d records (%d during or after the outage), %d duplicates at the subscriber", total, total-first, dups)
}

// TestUplinkMosquittoPriority: with a real Mosquitto, a backlog of passages (and an event
// stored with it), drained at a paced rate: the stored event is published first, and an
// event appended while the backlog drains arrives before the rest of the backlog. Each
// stream arrives in seq order.
func TestUplinkMosquittoPriority(t *testing.T) {
	broker := mqtttest.Start(t)
	col := broker.Subscribe(t, "sentinel/#")
	o, _ := openTemp(t, Options{})
	const backlog = 300
	for range backlog {
		mustAppend(t, o, "passage")
	}
	mustAppend(t, o, "event") // the fire alarm of the outage
	d := newDeliveries()
	log, _ := testLogger(t)
	u := NewUplink(o, UplinkConfig{Brokers: []string{broker.URL()}, Window: 8, DrainRate: 600, OnDelivered: d.add, Logger: log})
	stop := runUplink(t, u)
	d.wait(t, 30, 10*time.Second) // the drain is under way
	live := mustAppend(t, o, "event")
	msgs := col.WaitN(backlog+2, 20*time.Second)
	stop()
	if len(msgs) < backlog+2 {
		t.Fatalf("subscriber got %d of %d", len(msgs), backlog+2)
	}

	var passageSeqs []int64
	liveAt, passagesAfter := -1, 0
	for i, m := range msgs {
		var p struct {
			Seq int64  `json:"seq"`
			ID  string `json:"id"`
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatal(err)
		}
		switch m.Topic {
		case "sentinel/test/event":
			if p.Seq == 1 && i != 0 {
				t.Errorf("the stored event arrived %dth, want first (ahead of the backlog of passages)", i+1)
			}
			if p.ID == live.ID {
				liveAt = i
			}
		case "sentinel/test/passage":
			passageSeqs = append(passageSeqs, p.Seq)
			if liveAt >= 0 {
				passagesAfter++
			}
		}
	}
	for i, s := range passageSeqs {
		if s != int64(i+1) {
			t.Fatalf("passages arrived out of seq order at %d: %v", i, passageSeqs)
		}
	}
	// Appended after 30 deliveries of a 300-record backlog paced at 600/s, the live event
	// must not wait for the rest: most of the backlog arrives after it.
	if liveAt < 0 || passagesAfter < backlog/2 {
		t.Fatalf("the live event arrived %dth, with %d of %d passages after it; want it ahead of the remaining backlog",
			liveAt+1, passagesAfter, backlog)
	}
	t.Logf("live event arrived %dth; %d backlog passages after it", liveAt+1, passagesAfter)
}
