package queue

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// noise returns n incompressible bytes.
func noise(seed int64, n int) []byte {
	r := rand.New(rand.NewPCG(uint64(seed), 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func pendingSeqs(t *testing.T, o *Outbox, stream string) []int64 {
	t.Helper()
	p, err := o.Pending(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, e := range p {
		if e.Stream == stream {
			out = append(out, e.Seq)
		}
	}
	return out
}

func TestCapacityRejectNew(t *testing.T) {
	log, logs := testLogger(t)
	o, _ := openTemp(t, Options{Logger: log})
	if err := o.SetCapacity(Capacity{MaxRecords: 5, OnFull: OnFullRejectNew, NoticeTopic: "sentinel/test/queue"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var es []Entry
	for range 5 {
		es = append(es, mustAppend(t, o, "s"))
	}
	_, err := o.Append(ctx, "s", "sentinel/test/s", payloadOf)
	if !errors.Is(err, ErrFull) {
		t.Fatalf("6th append into 5 records: err = %v, want ErrFull", err)
	}
	st, _ := o.Stats(ctx)
	if st.RejectedFull != 1 || st.Dropped != 1 || st.Pending != 5 {
		t.Fatalf("after a rejection: %+v", st)
	}
	if !strings.Contains(logs.String(), "FULL of undelivered records") {
		t.Fatalf("no alarm logged:\n%s", logs)
	}
	if fmt.Sprint(pendingSeqs(t, o, "s")) != "[1 2 3 4 5]" {
		t.Fatalf("stored records changed: %v", pendingSeqs(t, o, "s"))
	}
	// Delivered records make room first; the loss is then reported upstream.
	if err := o.MarkDelivered(ctx, es[0].ID, es[1].ID, es[2].ID); err != nil {
		t.Fatal(err)
	}
	e := mustAppend(t, o, "s")
	if e.Seq != 6 {
		t.Fatalf("after the rejection the next seq is %d, want 6 (a rejected record uses no seq)", e.Seq)
	}
	p, _ := o.Pending(ctx, 0)
	var n notice
	for _, e := range p {
		if e.Stream == NoticeStream {
			if err := json.Unmarshal(e.Payload, &n); err != nil {
				t.Fatal(err)
			}
			if e.Topic != "sentinel/test/queue" {
				t.Errorf("notice on %q", e.Topic)
			}
		}
	}
	if n.Kind != "queue_loss" || n.Lost != 1 || n.RejectedFull != 1 || n.Seq != 1 {
		t.Fatalf("notice = %+v, want a queue_loss notice of 1 rejected record", n)
	}
	st, _ = o.Stats(ctx)
	if st.Records != 4 || st.Delivered != 0 || st.Pending != 4 { // 2 old, 1 new, 1 notice
		t.Fatalf("after making room: %+v", st)
	}
	// Reported once: the next append sends no second notice.
	mustAppend(t, o, "s")
	if ns := pendingSeqs(t, o, NoticeStream); len(ns) != 1 {
		t.Fatalf("notices %v, want one", ns)
	}
	if _, err := o.Append(ctx, "s", "sentinel/test/s", payloadOf); !errors.Is(err, ErrFull) {
		t.Fatalf("err = %v, want ErrFull", err)
	}
}

func TestCapacityDropOldest(t *testing.T) {
	log, logs := testLogger(t)
	o, _ := openTemp(t, Options{Logger: log})
	if err := o.SetCapacity(Capacity{MaxRecords: 5, OnFull: OnFullDropOldest}); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		mustAppend(t, o, "s")
	}
	if got := fmt.Sprint(pendingSeqs(t, o, "s")); got != "[4 5 6 7 8]" {
		t.Fatalf("pending after 8 appends into 5: %s, want [4 5 6 7 8]", got)
	}
	st, _ := o.Stats(context.Background())
	if st.DroppedOldest != 3 || st.Dropped != 3 || st.Records != 5 {
		t.Fatalf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "dropped the oldest") || !strings.Contains(logs.String(), "s:1") {
		t.Fatalf("drops not logged:\n%s", logs)
	}
}

func TestCapacityBytes(t *testing.T) {
	o, _ := openTemp(t, Options{})
	big := func(seq int64, id string) ([]byte, error) {
		return noise(seq, 1000), nil // incompressible, so the stored size is known
	}
	topic := "sentinel/test/b"
	per := rowSize(1000, 0) // the topic is stored once per stream
	if err := o.SetCapacity(Capacity{MaxBytes: 3*per + per/2, OnFull: OnFullRejectNew}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		if _, err := o.Append(ctx, "b", topic, big); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if _, err := o.Append(ctx, "b", topic, big); !errors.Is(err, ErrFull) {
		t.Fatalf("4th record over the byte budget: %v, want ErrFull", err)
	}
	st, _ := o.Stats(ctx)
	if st.Bytes != 3*per || st.Records != 3 {
		t.Fatalf("accounted %d bytes %d records, want %d, 3", st.Bytes, st.Records, 3*per)
	}
}

func TestRetentionPurge(t *testing.T) {
	o, _ := openTemp(t, Options{})
	ctx := context.Background()
	e1, e2 := mustAppend(t, o, "s"), mustAppend(t, o, "s")
	mustAppend(t, o, "s")
	if err := o.MarkDelivered(ctx, e1.ID, e2.ID); err != nil {
		t.Fatal(err)
	}
	if err := o.SetCapacity(Capacity{Retention: time.Hour}); err != nil { // triggers a purge
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "a purge round", func() bool { return o.purges.Load() >= 1 })
	if st, _ := o.Stats(ctx); st.Delivered != 2 {
		t.Fatalf("records delivered within the retention were purged: %+v", st)
	}
	if err := o.SetCapacity(Capacity{Retention: 0}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "delivered records purged", func() bool {
		st, _ := o.Stats(ctx)
		return st.Delivered == 0 && st.Pending == 1 && st.Records == 1
	})
}

// TestFailedWritesCounted fills the database (max_page_count stands in for a full disk): the
// append fails, the loss is counted at once in Stats and saved once writes succeed again.
func TestFailedWritesCounted(t *testing.T) {
	log, logs := testLogger(t)
	o, path := openTemp(t, Options{Logger: log})
	ctx := context.Background()
	mustAppend(t, o, "s")
	var pages int64
	if err := o.wc.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := o.wc.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
		t.Fatal(err)
	}
	huge := func(seq int64, _ string) ([]byte, error) { return noise(seq, 64<<10), nil }
	if _, err := o.Append(ctx, "s", "sentinel/test/s", huge); err == nil {
		t.Fatal("append into a full database succeeded")
	}
	if st, _ := o.Stats(ctx); st.FailedWrites != 1 || st.Dropped != 1 {
		t.Fatalf("after a failed write: %+v", st)
	}
	if !strings.Contains(logs.String(), "could NOT be written") {
		t.Fatalf("failure not logged:\n%s", logs)
	}
	if _, err := o.wc.ExecContext(ctx, "PRAGMA max_page_count = 1073741823"); err != nil {
		t.Fatal(err)
	}
	if e := mustAppend(t, o, "s"); e.Seq != 2 {
		t.Fatalf("seq after the failure %d, want 2", e.Seq)
	}
	r, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, err := r.Stats(ctx)
	if err != nil || st.FailedWrites != 1 || st.Pending != 2 {
		t.Fatalf("saved stats %+v, %v; want failed_writes 1", st, err)
	}
	if o2, _ := o.Stats(ctx); o2.FailedWrites != 1 {
		t.Fatalf("failed writes counted twice: %+v", o2)
	}
}

func TestCompressRoundTrip(t *testing.T) {
	rec := []byte(`{"id":"0b5d1f3e-4c2a-4a8e-9f1d-2b7c9e8a6d51","seq":4242,"ts":"2026-11-25T08:00:01.123Z","device":"gate-01","venue":"350582-0001","credential":"qr","subject":{"id":"3505**********1231","name":"张*"},"verdict":"pass","reason":"ok","mode":"online","gate":"opened","policy":"sha256:f6849c7b9a81e61a","health_code":"green","decision_ms":3}`)
	for _, p := range [][]byte{nil, []byte("short"), rec, bytes.Repeat([]byte{0xff, 0x00, 0x13}, 500)} {
		stored, enc := encode(p, "")
		got, err := decode(stored, enc, "")
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("round trip of %d bytes (enc %d): %v", len(p), enc, err)
		}
	}
	if stored, enc := encode(rec, ""); enc != encSplit || len(stored) > len(rec)*6/10 {
		t.Fatalf("a %d-byte record stored in %d bytes (enc %d)", len(rec), len(stored), enc)
	}
	if _, err := decode([]byte("x"), 99, ""); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("unknown encoding: %v", err)
	}
}

// TestSplitEncoding: records keep their random strings apart in binary (encSplit) and come
// back byte for byte, whatever the payload; damaged rows are an error, never a panic.
func TestSplitEncoding(t *testing.T) {
	const id = "0b5d1f3e-4c2a-4a8e-9f1d-2b7c9e8a6d51"
	sealed := base64.StdEncoding.EncodeToString(noise(1, 89))
	rec := []byte(`{"id":"` + id + `","seq":7,"subject":{"id":"3505**********1231","sealed":"` + sealed +
		`","hash":"0123456789abcdef0123456789abcdef"},"note":"` + id + `","x":"0123456789ABCDEF0123"}`)
	stored, enc := encode(rec, id)
	if enc != encSplit || len(stored) >= len(rec)-len(sealed)/4-len(id)/2 {
		t.Fatalf("a %d-byte record stored in %d bytes (enc %d): the random strings were not kept in binary", len(rec), len(stored), enc)
	}
	if bytes.Contains(stored, []byte(sealed[:16])) || bytes.Contains(stored, []byte(id[:13])) {
		t.Fatal("the sealed box or the id is still stored as text")
	}
	cases := [][]byte{
		rec,
		[]byte(`{"a":"QUJDREVGR0hJSktMTU5PUA==","b":"QUJDREVGR0hJSktMTU5PUB==","c":"with \"escaped\" quotes 0123456789abcdef"}`), // non-canonical base64 stays text
		[]byte(`"unterminated 0123456789abcdef0123456789abcdef`),
		[]byte(`""""""0123456789abcdef0123456789abcdef""` + id + `"`),
		bytes.Repeat([]byte(`{"k":"`+id+`"}`), 20),
		noise(2, 700),
	}
	for i := range 200 { // random JSON-ish records
		r := rand.New(rand.NewPCG(uint64(i), 7))
		var b strings.Builder
		for range r.IntN(20) {
			switch r.IntN(5) {
			case 0:
				b.WriteString(`"` + id + `"`)
			case 1:
				b.WriteString(`"` + base64.StdEncoding.EncodeToString(noise(int64(i), 12+r.IntN(40))) + `"`)
			case 2:
				b.WriteString(`"` + fmt.Sprintf("%x", noise(int64(i), 8+r.IntN(20))) + `"`)
			case 3:
				b.WriteString(`{"seq":` + fmt.Sprint(r.IntN(1e6)) + `,`)
			default:
				b.WriteString(string([]byte{'"', '\\', byte(r.IntN(256)), ':'}))
			}
		}
		cases = append(cases, []byte(b.String()))
	}
	for i, p := range cases {
		stored, enc := encode(p, id)
		got, err := decode(stored, enc, id)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("case %d: round trip of %d bytes (enc %d): %v\n got %q\nwant %q", i, len(p), enc, err, got, p)
		}
		if enc == encSplit {
			for cut := range len(stored) { // truncated: an error or other bytes, never a panic
				_, _ = decode(stored[:cut], enc, id)
			}
		}
	}
	if _, err := decode([]byte{1, 5, holeID, 0, 'x'}, encSplit, id); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a hole past the end: %v, want ErrCorrupt", err)
	}
	if _, err := decode([]byte{1, 0, 9, 0}, encSplit, id); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("an unknown hole kind: %v, want ErrCorrupt", err)
	}
}

// TestReaderWhileWriting reads stats and ids from another connection while appends go on.
func TestReaderWhileWriting(t *testing.T) {
	o, path := openTemp(t, Options{})
	ctx := context.Background()
	for range 10 {
		mustAppend(t, o, "s")
	}
	r, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			if _, err := o.Append(ctx, "s", "sentinel/test/s", payloadOf); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 20 {
		st, err := r.Stats(ctx)
		if err != nil || st.Pending < 10 {
			t.Fatalf("reader stats %+v, %v", st, err)
		}
	}
	<-done
	var ids []string
	if err := r.IDs(ctx, func(id string) error { ids = append(ids, id); return nil }); err != nil || len(ids) != 60 {
		t.Fatalf("%d ids, %v; want 60", len(ids), err)
	}
	if err := r.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReader(path + ".missing"); err == nil || !strings.Contains(err.Error(), path+".missing") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestDrainLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	es := make([]Entry, 100)
	for i := range es {
		es[i].Payload = make([]byte, 100)
	}
	l := newDrainLimiter(100, 0) // 100 msgs/s: a burst of 10
	if n, _ := l.admit(t0, es); n != 10 {
		t.Fatalf("at first %d admitted, want a burst of 10", n)
	}
	if n, wait := l.admit(t0, es); n != 0 || wait != 10*time.Millisecond {
		t.Fatalf("then %d with wait %v, want 0 and 10ms", n, wait)
	}
	if n, _ := l.admit(t0.Add(50*time.Millisecond), es); n != 5 {
		t.Fatalf("after 50ms: %d, want 5", n)
	}
	if n, _ := l.admit(t0.Add(10*time.Second), es); n != 10 {
		t.Fatalf("after a long pause: %d, want the burst of 10, not more", n)
	}
	lb := newDrainLimiter(0, 2000) // 2000 bytes/s: 200 bytes at once, 100-byte entries
	if n, _ := lb.admit(t0, es); n != 2 {
		t.Fatalf("bytes: %d admitted, want 2", n)
	}
	if n, wait := lb.admit(t0.Add(100*time.Millisecond), es); n != 2 || wait <= 0 {
		t.Fatalf("bytes after 100ms: %d (wait %v), want 2", n, wait)
	}
	big := []Entry{{Payload: make([]byte, 1000)}, {Payload: make([]byte, 10)}}
	if n, wait := newDrainLimiter(0, 2000).admit(t0, big); n != 1 || wait < 400*time.Millisecond {
		t.Fatalf("an entry larger than the burst: %d admitted, wait %v; want it through, then a debt of ~0.4s", n, wait)
	}
	if n, _ := newDrainLimiter(0, 0).admit(t0, es); n != 100 {
		t.Fatal("unbounded limiter held entries back")
	}
}

// TestUplinkLiveFirst: a record appended while a rate-limited backlog drains is delivered
// long before the backlog is.
func TestUplinkLiveFirst(t *testing.T) {
	o, _ := openTemp(t, Options{})
	const backlog = 300
	for range backlog {
		mustAppend(t, o, "s")
	}
	fb := &fakeBroker{}
	d := newDeliveries()
	log, logs := testLogger(t)
	u := NewUplink(o, fastBackoff(UplinkConfig{Brokers: []string{"tcp://fake:1883"}, Window: 8, DrainRate: 200, OnDelivered: d.add, Logger: log}))
	u.dial = fb.dial
	stop := runUplink(t, u)
	d.wait(t, 20, 10*time.Second) // the drain is under way
	live := mustAppend(t, o, "s")
	waitUntil(t, 5*time.Second, "the live record delivered", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, e := range d.entries {
			if e.ID == live.ID {
				return true
			}
		}
		return false
	})
	st, _ := o.Stats(context.Background())
	if st.Pending < backlog/2 {
		t.Fatalf("the live record was delivered only when %d of the backlog were left", st.Pending)
	}
	d.wait(t, backlog+1, 10*time.Second)
	stop()
	// The backlog went in seq order, the live record overtook it.
	var seqs []int64
	for _, p := range fb.snapshot() {
		seqs = append(seqs, p.seq)
	}
	if backlogSplit(seqs) != backlog {
		t.Fatalf("publishes are not the backlog in order with the live record ahead: %v", seqs)
	}
	if !strings.Contains(logs.String(), "draining the backlog") {
		t.Fatalf("drain not logged:\n%s", logs)
	}
}

// TestMigrateV1WithData opens a schema version 1 database holding records: they survive the
// rebuild of version 2 with their topics, ids, seqs and delivery marks, and are accounted.
func TestMigrateV1WithData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrateStep(context.Background(), db, migrations[0]); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO streams VALUES ('s', 2), ('e', 1)`,
		`INSERT INTO outbox (id, stream, seq, topic, payload, created_at, delivered_at) VALUES
			('11111111-1111-4111-8111-111111111111', 's', 1, 'a/s', '{"seq":1}', 1000, 2000),
			('22222222-2222-4222-8222-222222222222', 's', 2, 'a/s', '{"seq":2}', 1001, NULL),
			('33333333-3333-4333-8333-333333333333', 'e', 1, 'a/e', '{"seq":1}', 1002, NULL)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	o, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	p, err := o.Pending(context.Background(), 0)
	if err != nil || len(p) != 2 || p[0].Topic != "a/s" || p[0].Seq != 2 || p[1].Topic != "a/e" || string(p[0].Payload) != `{"seq":2}` {
		t.Fatalf("pending after migration: %+v, %v", p, err)
	}
	if p[0].ID != "22222222-2222-4222-8222-222222222222" || p[1].ID != "33333333-3333-4333-8333-333333333333" {
		t.Fatalf("ids after migration: %s, %s", p[0].ID, p[1].ID)
	}
	var textID string
	if err := o.db.QueryRow(`SELECT id FROM outbox WHERE n = 1`).Scan(&textID); err != nil || textID != "11111111-1111-4111-8111-111111111111" {
		t.Fatalf("the id column reads %q, %v", textID, err)
	}
	if e := mustAppend(t, o, "s"); e.Seq != 3 {
		t.Fatalf("next seq %d, want 3", e.Seq)
	}
	st, _ := o.Stats(context.Background())
	if st.Records != 4 || st.Delivered != 1 || st.Bytes <= 0 {
		t.Fatalf("stats after migration %+v", st)
	}
}

// TestPendingQueryPlan: the uplink's reads go through the pending index, never a walk over
// delivered rows (that made a 100,000-record drain quadratic).
func TestPendingQueryPlan(t *testing.T) {
	o, _ := openTemp(t, Options{})
	for range 20 {
		mustAppend(t, o, "s")
	}
	for q, index := range map[string]string{pendingSQL: "outbox_pending", pendingRoutineSQL: "outbox_pending", pendingPrioSQL: "outbox_priority"} {
		rows, err := o.db.Query(`EXPLAIN QUERY PLAN `+q, 0, 1000, 32)
		if err != nil {
			t.Fatal(err)
		}
		var plan strings.Builder
		for rows.Next() {
			var a, b, c int
			var d string
			if err := rows.Scan(&a, &b, &c, &d); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(d + "\n")
		}
		rows.Close()
		if !strings.Contains(plan.String(), "USING INDEX "+index) {
			t.Fatalf("pending read does not use %s:\n%s\n%s", index, q, plan.String())
		}
	}
	// The priority index and query name the same streams as priorityStreams.
	var sqlText string
	if err := o.db.QueryRow(`SELECT sql FROM sqlite_schema WHERE name = 'outbox_priority'`).Scan(&sqlText); err != nil {
		t.Fatal(err)
	}
	list := "('" + strings.Join(priorityStreams, "', '") + "')"
	if !strings.Contains(sqlText, list) || !strings.Contains(pendingPrioSQL, list) || !strings.Contains(pendingRoutineSQL, list) {
		t.Fatalf("priority streams %v: index %s", priorityStreams, sqlText)
	}
}
