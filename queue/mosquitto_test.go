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
	for i, s := range seqs {
		if s != int64(i+1) || msgs[i].Topic != "sentinel/test/s" {
			t.Fatalf("message %d: %s seq %d, want sentinel/test/s seq %d", i, msgs[i].Topic, s, i+1)
		}
	}
	st, err := o.Stats(context.Background())
	if err != nil || st.Pending != 0 || st.Delivered != n || st.LastDelivery.IsZero() {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
	if strings.Contains(logs.String(), `"seq"`) {
		t.Fatalf("a payload was logged:\n%s", logs.String())
	}
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
	waitUntil(t, 10*time.Second, "the subscriber to receive the last seq", func() bool {
		seqs := seqsOf(t, col.Messages())
		return len(seqs) > 0 && seqs[len(seqs)-1] == int64(total)
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
	for i, s := range firsts {
		if s != int64(i+1) {
			t.Fatalf("first occurrence #%d is seq %d, want %d (gap or reordering)", i, s, i+1)
		}
	}
	if len(firsts) != total {
		t.Fatalf("subscriber saw %d distinct seqs, want %d", len(firsts), total)
	}
	// Every record marked delivered exactly once, in order.
	if len(delivered) != total {
		t.Fatalf("%d deliveries reported, want %d", len(delivered), total)
	}
	for i, e := range delivered {
		if e.Seq != int64(i+1) {
			t.Fatalf("delivery %d is seq %d", i, e.Seq)
		}
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
