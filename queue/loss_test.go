package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

const testNoticeTopic = "sentinel/test/queue"

// savedStats reads the counters from disk, as `sentinel queue stats` does.
func savedStats(t *testing.T, path string) Stats {
	t.Helper()
	r, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, err := r.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// pendingNotices returns the queue_loss notices pending in o.
func pendingNotices(t *testing.T, o *Outbox) []notice {
	t.Helper()
	p, err := o.Pending(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []notice
	for _, e := range p {
		if e.Stream != NoticeStream {
			continue
		}
		var n notice
		if err := json.Unmarshal(e.Payload, &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func setLossRetry(t *testing.T, d time.Duration) {
	old := lossRetry
	lossRetry = d
	t.Cleanup(func() { lossRetry = old })
}

// readOnly makes every write of the outbox fail (as a full or failing disk does) or work again.
func readOnly(t *testing.T, o *Outbox, on bool) {
	t.Helper()
	v := 0
	if on {
		v = 1
	}
	if _, err := o.wc.ExecContext(context.Background(), fmt.Sprintf("PRAGMA query_only = %d", v)); err != nil {
		t.Fatal(err)
	}
}

// deliverTo runs an uplink on o against a fake broker until want records are delivered, and
// returns the broker, the seqs of stream delivered, in order, and the last queue_loss notice.
// Anything delivered from another stream fails the test.
func deliverTo(t *testing.T, o *Outbox, log *slog.Logger, stream string, want int) (*fakeBroker, []int64, notice) {
	t.Helper()
	fb := &fakeBroker{}
	d := newDeliveries()
	u := NewUplink(o, fastBackoff(UplinkConfig{Brokers: []string{"tcp://fake:1883"}, Window: 2, OnDelivered: d.add, Logger: log}))
	u.dial = fb.dial
	stop := runUplink(t, u)
	got := d.wait(t, want, 10*time.Second)
	stop()
	var seqs []int64
	var n notice
	for _, e := range got {
		switch e.Stream {
		case stream:
			seqs = append(seqs, e.Seq)
		case NoticeStream:
			if err := json.Unmarshal(e.Payload, &n); err != nil {
				t.Fatal(err)
			}
		default:
			t.Errorf("delivered %s seq %d to %q, want only %s and the notice", e.Stream, e.Seq, e.Topic, stream)
		}
	}
	return fb, seqs, n
}

// TestQuarantineUndecodableRows: rows whose payload or id cannot be decoded are set aside
// (bytes kept), counted as lost and reported by a queue_loss notice; the rest of the backlog
// is delivered.
func TestQuarantineUndecodableRows(t *testing.T) {
	log, logs := testLogger(t)
	o, path := openTemp(t, Options{Logger: log})
	if err := o.SetCapacity(Capacity{NoticeTopic: testNoticeTopic}); err != nil {
		t.Fatal(err)
	}
	for range 6 {
		mustAppend(t, o, "s")
	}
	ctx := context.Background()
	garbage := []byte{0xff, 0xfe, 0xfd, 0xfc, 0xfb}
	if _, err := o.db.ExecContext(ctx, `UPDATE outbox SET enc = 1, payload = ? WHERE stream = 's' AND seq = 3`, garbage); err != nil {
		t.Fatal(err)
	}
	if _, err := o.db.ExecContext(ctx, `UPDATE outbox SET uid = x'0102' WHERE stream = 's' AND seq = 5`); err != nil {
		t.Fatal(err)
	}

	fb, seqs, n := deliverTo(t, o, log, "s", 5) // s 1 2 4 6 and the notice
	if fmt.Sprint(seqs) != "[1 2 4 6]" {
		t.Fatalf("delivered seqs %v, want [1 2 4 6]", seqs)
	}
	if n.Kind != "queue_loss" || n.Lost != 2 || n.Quarantined != 2 {
		t.Fatalf("notice %+v, want a queue_loss notice of 2 quarantined records", n)
	}
	if len(fb.conns) != 1 {
		t.Fatalf("%d connections, want 1 (a damaged row must not end the connection)", len(fb.conns))
	}
	st, err := o.Stats(ctx)
	if err != nil || st.Quarantined != 2 || st.Dropped != 2 || st.Pending != 0 || st.Records != 5 {
		t.Fatalf("stats %+v, %v; want 2 quarantined, nothing pending, 5 records", st, err)
	}
	if s := savedStats(t, path); s.Quarantined != 2 || s.Dropped != 2 {
		t.Fatalf("saved stats %+v, want 2 quarantined", s)
	}
	// The bytes are kept for analysis.
	var stored []byte
	var reason string
	if err := o.db.QueryRowContext(ctx, `SELECT payload, reason FROM quarantine WHERE stream = 's' AND seq = 3`).Scan(&stored, &reason); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, garbage) || reason == "" {
		t.Fatalf("quarantined seq 3: payload %x reason %q, want the damaged bytes and a reason", stored, reason)
	}
	var uid []byte
	if err := o.db.QueryRowContext(ctx, `SELECT uid FROM quarantine WHERE stream = 's' AND seq = 5`).Scan(&uid); err != nil || !bytes.Equal(uid, []byte{1, 2}) {
		t.Fatalf("quarantined seq 5: uid %x, %v", uid, err)
	}
	if c := strings.Count(logs.String(), "it is quarantined"); c != 2 {
		t.Fatalf("%d quarantine log lines, want 2:\n%s", c, logs)
	}
}

// TestQuarantineUnpublishableRows: a pending row that can never be published (its stream has
// no streams row, as after a damaged byte in the stream column, or no valid topic, as a
// salvage that invented a stream left it) is quarantined like an undecodable one: counted,
// reported by a queue_loss notice, and the records behind it are delivered on the same
// connection.
func TestQuarantineUnpublishableRows(t *testing.T) {
	tests := []struct {
		name   string
		damage []string // SQL run with foreign keys off
		reason string   // in the quarantine reason
	}{
		{name: "stream unknown", damage: []string{`UPDATE outbox SET stream = 'passagf' WHERE stream = 'passage' AND seq = 3`}, reason: "stream"},
		{name: "stream without topic", damage: []string{
			`INSERT INTO streams (stream, last_seq, topic) VALUES ('passagf', 3, '')`,
			`UPDATE outbox SET stream = 'passagf' WHERE stream = 'passage' AND seq = 3`,
		}, reason: "topic"},
		{name: "wildcard topic", damage: []string{`UPDATE outbox SET topic = 'sentinel/+/passage' WHERE stream = 'passage' AND seq = 3`}, reason: "topic"},
		{name: "topic not UTF-8", damage: []string{`UPDATE outbox SET topic = CAST(x'73656e74696e656cff' AS TEXT) WHERE stream = 'passage' AND seq = 3`}, reason: "topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := testLogger(t)
			o, path := openTemp(t, Options{Logger: log})
			if err := o.SetCapacity(Capacity{NoticeTopic: testNoticeTopic}); err != nil {
				t.Fatal(err)
			}
			for range 6 {
				mustAppend(t, o, "passage")
			}
			ctx := context.Background()
			c, err := o.db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range append(append([]string{`PRAGMA foreign_keys = OFF`}, tt.damage...), `PRAGMA foreign_keys = ON`) {
				if _, err := c.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			c.Close()

			fb, seqs, n := deliverTo(t, o, log, "passage", 6) // passage 1 2 4 5 6 and the notice
			if fmt.Sprint(seqs) != "[1 2 4 5 6]" {
				t.Fatalf("delivered seqs %v, want [1 2 4 5 6]", seqs)
			}
			if n.Kind != "queue_loss" || n.Lost != 1 || n.Quarantined != 1 {
				t.Fatalf("notice %+v, want a queue_loss notice of 1 quarantined record", n)
			}
			if len(fb.conns) != 1 {
				t.Fatalf("%d connections, want 1 (an unpublishable row must not end the connection)", len(fb.conns))
			}
			if s := savedStats(t, path); s.Quarantined != 1 || s.Pending != 0 {
				t.Fatalf("saved stats %+v, want 1 quarantined, nothing pending", s)
			}
			var reason string
			if err := o.db.QueryRowContext(ctx, `SELECT reason FROM quarantine WHERE seq = 3`).Scan(&reason); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(reason, tt.reason) {
				t.Fatalf("quarantine reason %q, want it to name the %s", reason, tt.reason)
			}
			if c := strings.Count(logs.String(), "it is quarantined"); c != 1 {
				t.Fatalf("%d quarantine log lines, want 1:\n%s", c, logs)
			}
		})
	}
}

// TestPendingReadsPastBadRows: damaged rows do not use up a read's limit, and are read once.
func TestPendingReadsPastBadRows(t *testing.T) {
	log, _ := testLogger(t)
	o, _ := openTemp(t, Options{Logger: log})
	for range 6 {
		mustAppend(t, o, "s")
	}
	ctx := context.Background()
	if _, err := o.db.ExecContext(ctx, `UPDATE outbox SET enc = 2, payload = x'ff' WHERE stream = 's' AND seq <= 3`); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		p, err := o.Pending(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, e := range p {
			seqs = append(seqs, e.Seq)
		}
		if fmt.Sprint(seqs) != "[4 5]" {
			t.Fatalf("Pending(2) = %v, want [4 5]", seqs)
		}
	}
	if st, _ := o.Stats(ctx); st.Quarantined != 3 || st.Pending != 3 {
		t.Fatalf("stats %+v, want 3 quarantined, 3 pending", st)
	}
}

// TestLossesSavedWhileDiskFull: a failed write is saved, with its queue_loss notice, as soon
// as writing works again, without waiting for another record; while the disk stays
// unwritable it is logged once.
func TestLossesSavedWhileDiskFull(t *testing.T) {
	setLossRetry(t, 5*time.Millisecond)
	log, logs := testLogger(t)
	o, path := openTemp(t, Options{Logger: log})
	if err := o.SetCapacity(Capacity{NoticeTopic: testNoticeTopic}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mustAppend(t, o, "s")
	readOnly(t, o, true)
	if _, err := o.Append(ctx, "s", "sentinel/test/s", payloadOf); err == nil {
		t.Fatal("append into an unwritable database succeeded")
	}
	if st, _ := o.Stats(ctx); st.FailedWrites != 1 {
		t.Fatalf("in-memory stats %+v, want failed_writes 1", st)
	}
	from := o.lossFlushes.Load()
	waitUntil(t, 10*time.Second, "several attempts to save the count", func() bool { return o.lossFlushes.Load() >= from+6 })
	if c := strings.Count(logs.String(), "could NOT be saved"); c != 1 {
		t.Fatalf("%d log lines for a disk that stays unwritable, want 1:\n%s", c, logs)
	}
	readOnly(t, o, false)
	waitUntil(t, 10*time.Second, "the failed write saved", func() bool { return savedStats(t, path).FailedWrites == 1 })
	// The count and its notice may be saved by different attempts: wait for the notice too.
	waitUntil(t, 10*time.Second, "the loss notice stored", func() bool { return len(pendingNotices(t, o)) > 0 })
	ns := pendingNotices(t, o)
	if len(ns) != 1 || ns[0].Lost != 1 || ns[0].FailedWrites != 1 {
		t.Fatalf("notices %+v, want one of 1 failed write", ns)
	}
	if st, _ := o.Stats(ctx); st.FailedWrites != 1 || st.Dropped != 1 {
		t.Fatalf("stats %+v: counted twice?", st)
	}
	waitUntil(t, 10*time.Second, "the recovery logged", func() bool { return strings.Contains(logs.String(), "saved again") })
}

// TestLossesSavedAtClose: losses still in memory are written by Close, so they survive a
// restart.
func TestLossesSavedAtClose(t *testing.T) {
	setLossRetry(t, time.Hour)
	log, _ := testLogger(t)
	o, path := openTemp(t, Options{Logger: log})
	ctx := context.Background()
	mustAppend(t, o, "s")
	readOnly(t, o, true)
	if _, err := o.Append(ctx, "s", "sentinel/test/s", payloadOf); err == nil {
		t.Fatal("append into an unwritable database succeeded")
	}
	readOnly(t, o, false)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if st := savedStats(t, path); st.FailedWrites != 1 || st.Dropped != 1 {
		t.Fatalf("after Close: %+v, want failed_writes 1", st)
	}
}

// TestAbandonedAppendsCounted: an append whose context ends before the writer takes it is a
// lost record: counted on disk and reported.
func TestAbandonedAppendsCounted(t *testing.T) {
	log, _ := testLogger(t)
	o, path := openTemp(t, Options{Logger: log})
	if err := o.SetCapacity(Capacity{NoticeTopic: testNoticeTopic}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Ended before the call.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := o.Append(done, "s", "sentinel/test/s", payloadOf); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}

	// Ended while queued behind a commit.
	inBuild, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := o.Append(ctx, "s", "sentinel/test/s", func(seq int64, id string) ([]byte, error) {
			close(inBuild)
			<-release
			return payloadOf(seq, id)
		})
		first <- err
	}()
	<-inBuild // the writer is busy
	qctx, qcancel := context.WithCancel(ctx)
	second := make(chan error, 1)
	go func() {
		_, err := o.Append(qctx, "s", "sentinel/test/s", payloadOf)
		second <- err
	}()
	waitUntil(t, 10*time.Second, "the second append queued", func() bool { return len(o.reqs) > 0 })
	qcancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Fatalf("queued append: err = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if e := mustAppend(t, o, "s"); e.Seq != 2 {
		t.Fatalf("seq %d, want 2 (abandoned appends use no seq)", e.Seq)
	}
	if st := savedStats(t, path); st.Abandoned != 2 || st.Dropped != 2 {
		t.Fatalf("saved stats %+v, want abandoned 2", st)
	}
	var lost, abandoned int64
	for _, n := range pendingNotices(t, o) {
		lost += n.Lost
		abandoned = max(abandoned, n.Abandoned)
	}
	if lost != 2 || abandoned != 2 {
		t.Fatalf("notices report %d lost, %d abandoned; want 2 and 2", lost, abandoned)
	}
	b, err := json.Marshal(savedStats(t, path))
	if err != nil || !strings.Contains(string(b), `"abandoned":2`) || !strings.Contains(string(b), `"quarantined":0`) {
		t.Fatalf("stats JSON %s, %v", b, err)
	}
}
