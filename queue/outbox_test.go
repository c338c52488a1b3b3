package queue

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

func openTemp(t testing.TB, opts Options) (*Outbox, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "queue.db")
	o, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = o.Close() })
	return o, path
}

// payloadOf is the build func the tests use: a small JSON document carrying seq and id.
func payloadOf(seq int64, id string) ([]byte, error) {
	return fmt.Appendf(nil, `{"seq":%d,"id":%q}`, seq, id), nil
}

func mustAppend(t testing.TB, o *Outbox, stream string) Entry {
	t.Helper()
	e, err := o.Append(context.Background(), stream, "sentinel/test/"+stream, payloadOf)
	if err != nil {
		t.Fatalf("Append(%s): %v", stream, err)
	}
	return e
}

func TestAppendSeqAndID(t *testing.T) {
	o, path := openTemp(t, Options{})
	ctx := context.Background()

	var gotSeq int64
	var gotID string
	e, err := o.Append(ctx, "events", "sentinel/t1/events", func(seq int64, id string) ([]byte, error) {
		gotSeq, gotID = seq, id
		return []byte("hello"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 1 || gotSeq != 1 || e.ID != gotID || string(e.Payload) != "hello" ||
		e.Stream != "events" || e.Topic != "sentinel/t1/events" || e.CreatedAt.IsZero() || !e.DeliveredAt.IsZero() {
		t.Fatalf("first entry = %+v (build saw seq %d id %s)", e, gotSeq, gotID)
	}
	if u, err := uuid.Parse(e.ID); err != nil || u.Version() != 4 {
		t.Fatalf("id %q is not a UUID v4 (%v)", e.ID, err)
	}

	ids := map[string]bool{e.ID: true}
	var order []Entry
	order = append(order, e)
	for i, want := range []struct {
		stream string
		seq    int64
	}{{"events", 2}, {"status", 1}, {"events", 3}, {"status", 2}} {
		e := mustAppend(t, o, want.stream)
		if e.Seq != want.seq {
			t.Fatalf("append %d to %s: seq %d, want %d", i, want.stream, e.Seq, want.seq)
		}
		if ids[e.ID] {
			t.Fatalf("duplicate id %s", e.ID)
		}
		ids[e.ID] = true
		order = append(order, e)
	}

	// A failing build fails only its own append and does not use up the seq.
	boom := errors.New("boom")
	if _, err := o.Append(ctx, "events", "t", func(int64, string) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("failing build: err = %v, want %v", err, boom)
	}
	if _, err := o.Append(ctx, "events", "t", func(int64, string) ([]byte, error) { panic("bad build") }); err == nil {
		t.Fatal("panicking build: no error")
	}
	if e := mustAppend(t, o, "events"); e.Seq != 4 {
		t.Fatalf("after failed builds: seq %d, want 4", e.Seq)
	} else {
		order = append(order, e)
	}

	// Pending is insertion order across streams, with payloads.
	pend, err := o.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pend) != len(order) {
		t.Fatalf("Pending: %d entries, want %d", len(pend), len(order))
	}
	for i := range pend {
		w := order[i]
		if pend[i].ID != w.ID || pend[i].Seq != w.Seq || pend[i].Stream != w.Stream || pend[i].Topic != w.Topic ||
			!bytes.Equal(pend[i].Payload, w.Payload) || !pend[i].CreatedAt.Equal(w.CreatedAt) {
			t.Fatalf("Pending[%d] = %+v, want %+v", i, pend[i], w)
		}
	}
	if p, _ := o.Pending(ctx, 2); len(p) != 2 || p[0].ID != order[0].ID {
		t.Fatalf("Pending(limit 2) = %v", p)
	}

	// Deliver everything and purge the delivered rows: seqs must still continue.
	all := make([]string, len(pend))
	for i, e := range pend {
		all[i] = e.ID
	}
	if err := o.MarkDelivered(ctx, all...); err != nil {
		t.Fatal(err)
	}
	if _, err := o.db.Exec(`DELETE FROM outbox WHERE delivered_at IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}

	o2, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer o2.Close()
	if e := mustAppend(t, o2, "events"); e.Seq != 5 {
		t.Fatalf("after reopen: events seq %d, want 5", e.Seq)
	}
	if e := mustAppend(t, o2, "status"); e.Seq != 3 {
		t.Fatalf("after reopen: status seq %d, want 3", e.Seq)
	}
	if e := mustAppend(t, o2, "new"); e.Seq != 1 {
		t.Fatalf("new stream seq %d, want 1", e.Seq)
	}
}

func TestAppendInvalid(t *testing.T) {
	o, _ := openTemp(t, Options{})
	tests := []struct {
		name, stream, topic string
		build               func(int64, string) ([]byte, error)
	}{
		{name: "empty stream", stream: "", topic: "a/b", build: payloadOf},
		{name: "empty topic", stream: "s", topic: "", build: payloadOf},
		{name: "wildcard topic", stream: "s", topic: "a/+/b", build: payloadOf},
		{name: "nil build", stream: "s", topic: "a/b", build: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := o.Append(context.Background(), tt.stream, tt.topic, tt.build); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	// A caller's id must be a UUID in the canonical form the outbox stores and publishes.
	for _, id := range []string{"not-a-uuid", "0B5D1F3E-4C2A-4A8E-9F1D-2B7C9E8A6D51", "urn:uuid:0b5d1f3e-4c2a-4a8e-9f1d-2b7c9e8a6d51",
		"00000000-0000-0000-0000-000000000000"} {
		if _, err := o.AppendID(context.Background(), "s", "a/b", id, payloadOf); !errors.Is(err, ErrInvalid) {
			t.Errorf("AppendID(%q): %v, want ErrInvalid", id, err)
		}
	}
	const id = "0b5d1f3e-4c2a-4a8e-9f1d-2b7c9e8a6d51"
	if e, err := o.AppendID(context.Background(), "s", "a/b", id, payloadOf); err != nil || e.ID != id {
		t.Fatalf("AppendID(%q) = %q, %v", id, e.ID, err)
	}
	if p, err := o.Pending(context.Background(), 0); err != nil || len(p) != 1 || p[0].ID != id || !strings.Contains(string(p[0].Payload), id) {
		t.Fatalf("pending after AppendID: %+v, %v", p, err)
	}
}

// TestGroupCommit holds the writer inside one append's build until 49 more appends are
// queued, so they must all commit in exactly one further transaction.
func TestGroupCommit(t *testing.T) {
	o, _ := openTemp(t, Options{})
	const n = 50
	ctx := context.Background()
	before := o.txCount.Load()

	inBuild, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	results := make([]Entry, n)
	errs := make([]error, n)
	wg.Add(1)
	go func() {
		defer wg.Done()
		results[0], errs[0] = o.Append(ctx, "s", "t/s", func(seq int64, id string) ([]byte, error) {
			close(inBuild)
			<-release
			return payloadOf(seq, id)
		})
	}()
	<-inBuild
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = o.Append(ctx, "s", "t/s", payloadOf)
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(o.reqs) < n-1 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d appends queued", len(o.reqs))
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()

	checkSeqs(t, results, errs)
	if got := o.txCount.Load() - before; got != 2 {
		t.Fatalf("%d appends took %d transactions, want 2 (one held, then one group commit)", n, got)
	}
}

// TestMarksNeedNoFsync: a transaction of delivery marks only runs at synchronous=NORMAL
// (lost on power loss, the records are sent again); appends always run at FULL.
func TestMarksNeedNoFsync(t *testing.T) {
	ctx := context.Background()
	syncLevel := func(o *Outbox) int {
		var v int
		if err := o.wc.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	o, _ := openTemp(t, Options{})
	e := mustAppend(t, o, "s")
	if v := syncLevel(o); v != 2 {
		t.Fatalf("after an append: synchronous %d, want 2 (FULL)", v)
	}
	if err := o.MarkDelivered(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	if v := syncLevel(o); v != 1 {
		t.Fatalf("after a mark: synchronous %d, want 1 (NORMAL)", v)
	}
	mustAppend(t, o, "s")
	if v := syncLevel(o); v != 2 {
		t.Fatalf("after the next append: synchronous %d, want 2 (FULL)", v)
	}
	if st, _ := o.Stats(ctx); st.Delivered != 1 || st.Pending != 1 {
		t.Fatalf("stats %+v", st)
	}
	// NORMAL configured: stays NORMAL.
	on, _ := openTemp(t, Options{Synchronous: "NORMAL"})
	mustAppend(t, on, "s")
	if v := syncLevel(on); v != 1 {
		t.Fatalf("NORMAL outbox: synchronous %d", v)
	}
}

// TestConcurrentAppends lets 50 goroutines append freely.
func TestConcurrentAppends(t *testing.T) {
	o, _ := openTemp(t, Options{})
	const goroutines, each = 50, 20
	before := o.txCount.Load()
	results := make([]Entry, goroutines*each)
	errs := make([]error, goroutines*each)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				k := g*each + i
				results[k], errs[k] = o.Append(context.Background(), "s", "t/s", payloadOf)
			}
		}()
	}
	wg.Wait()
	checkSeqs(t, results, errs)
	txs := o.txCount.Load() - before
	t.Logf("%d appends in %d transactions", len(results), txs)
	if txs >= int64(len(results)) {
		t.Fatalf("%d appends took %d transactions: no group commit", len(results), txs)
	}
	pend, err := o.Pending(context.Background(), 0)
	if err != nil || len(pend) != len(results) {
		t.Fatalf("Pending: %d entries, %v; want %d", len(pend), err, len(results))
	}
	for i, e := range pend {
		if e.Seq != int64(i+1) {
			t.Fatalf("Pending[%d].Seq = %d: insertion order is not seq order", i, e.Seq)
		}
	}
}

// checkSeqs asserts that every append succeeded and the seqs are exactly 1..N.
func checkSeqs(t *testing.T, results []Entry, errs []error) {
	t.Helper()
	seqs := make([]int64, len(results))
	ids := make(map[string]bool)
	for i, e := range results {
		if errs[i] != nil {
			t.Fatalf("append %d: %v", i, errs[i])
		}
		seqs[i] = e.Seq
		ids[e.ID] = true
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("sorted seqs[%d] = %d, want %d (gap or duplicate)", i, s, i+1)
		}
	}
	if len(ids) != len(results) {
		t.Fatalf("%d distinct ids for %d entries", len(ids), len(results))
	}
}

func TestAppendContextCanceled(t *testing.T) {
	o, _ := openTemp(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	_, err := o.Append(ctx, "s", "t", func(seq int64, id string) ([]byte, error) { called = true; return nil, nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// The writer may see the request; it must not build or write it.
	if e := mustAppend(t, o, "s"); e.Seq != 1 || called {
		t.Fatalf("after canceled append: seq %d, build called %v", e.Seq, called)
	}
}

func TestForeignDatabase(t *testing.T) {
	dir := t.TempDir()
	sqliteFile := func(name string, stmts ...string) string {
		p := filepath.Join(dir, name)
		db, err := sql.Open("sqlite3", p)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			if _, err := db.Exec(s); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		return p
	}
	rawFile := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbage := bytes.Repeat([]byte("not a database, definitely garbage\x00\xff"), 200)

	tests := []struct {
		name    string
		path    string
		wantErr error
	}{
		{name: "garbage bytes", path: rawFile("garbage.db", garbage), wantErr: ErrForeignDatabase},
		{name: "short garbage", path: rawFile("short.db", []byte("xyz")), wantErr: ErrForeignDatabase},
		{name: "sqlite header then garbage", path: rawFile("fakehdr.db", append([]byte("SQLite format 3\x00"), garbage...)), wantErr: ErrForeignDatabase},
		{name: "other application_id", path: sqliteFile("app.db", "PRAGMA application_id = 1234", "CREATE TABLE t (x)"), wantErr: ErrForeignDatabase},
		{name: "other application_id, no tables", path: sqliteFile("app2.db", "PRAGMA application_id = 99", "PRAGMA user_version = 1"), wantErr: ErrForeignDatabase},
		{name: "unknown tables", path: sqliteFile("tables.db", "CREATE TABLE photos (id, data)"), wantErr: ErrForeignDatabase},
		{name: "unknown tables in WAL mode", path: sqliteFile("wal.db", "PRAGMA journal_mode = WAL", "CREATE TABLE photos (id, data)"), wantErr: ErrForeignDatabase},
		{name: "newer schema", path: sqliteFile("newer.db", fmt.Sprintf("PRAGMA application_id = %d", ApplicationID), "PRAGMA user_version = 999"), wantErr: ErrSchemaTooNew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			fi0, _ := os.Stat(tt.path)
			o, err := Open(tt.path, Options{})
			if err == nil {
				o.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), "move it aside") {
				t.Errorf("error %q should name the file and say to move it aside", err)
			}
			after, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			fi1, _ := os.Stat(tt.path)
			if !bytes.Equal(before, after) || !fi0.ModTime().Equal(fi1.ModTime()) {
				t.Fatal("the file was modified")
			}
		})
	}
}

func TestOpenEmptyFileAndMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := Open(path, Options{Synchronous: "normal"})
	if err != nil {
		t.Fatalf("Open empty file: %v", err)
	}
	defer o.Close()
	var app, ver, syncMode, fk int
	var journal string
	for q, dst := range map[string]any{
		"PRAGMA application_id": &app, "PRAGMA user_version": &ver, "PRAGMA synchronous": &syncMode,
		"PRAGMA foreign_keys": &fk, "PRAGMA journal_mode": &journal,
	} {
		if err := o.db.QueryRow(q).Scan(dst); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if app != ApplicationID || ver != schemaVersion() || syncMode != 1 || fk != 1 || journal != "wal" {
		t.Fatalf("application_id %#x user_version %d synchronous %d foreign_keys %d journal_mode %s",
			app, ver, syncMode, fk, journal)
	}
	// Migrating again is a no-op.
	if err := migrate(context.Background(), o.db); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	// Pending reads through the partial index.
	var plan strings.Builder
	rows, err := o.db.Query(`EXPLAIN QUERY PLAN SELECT id FROM outbox WHERE delivered_at IS NULL ORDER BY n LIMIT 10`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a, b, c int
		var d string
		if err := rows.Scan(&a, &b, &c, &d); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(d + "\n")
	}
	rows.Close()
	if !strings.Contains(plan.String(), "outbox_pending") {
		t.Errorf("pending query does not use the partial index:\n%s", plan.String())
	}
}

func TestOpenDefaultSynchronousAndInvalid(t *testing.T) {
	o, _ := openTemp(t, Options{})
	var syncMode int
	if err := o.db.QueryRow("PRAGMA synchronous").Scan(&syncMode); err != nil || syncMode != 2 {
		t.Fatalf("default synchronous = %d (%v), want 2 (FULL)", syncMode, err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "x.db"), Options{Synchronous: "OFF"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Synchronous OFF: err = %v, want ErrInvalid", err)
	}
}

func TestParseMigrations(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    int
		wantErr bool
	}{
		{name: "two", src: "-- version 1\nCREATE TABLE a (x);\n-- version 2\nCREATE TABLE b (x);\n", want: 2},
		{name: "gap", src: "-- version 1\nX;\n-- version 3\nY;\n", wantErr: true},
		{name: "none", src: "CREATE TABLE a (x);", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := parseMigrations(tt.src)
			if (err != nil) != tt.wantErr || len(ms) != tt.want {
				t.Fatalf("got %d migrations, err %v", len(ms), err)
			}
		})
	}
}

func TestStatsAndChanged(t *testing.T) {
	o, _ := openTemp(t, Options{})
	ctx := context.Background()
	select {
	case <-o.Changed():
		t.Fatal("Changed fired before any append")
	default:
	}
	s, err := o.Stats(ctx)
	if err != nil || s.Pending != 0 || s.Delivered != 0 || !s.OldestPending.IsZero() || !s.LastDelivery.IsZero() || s.BytesOnDisk == 0 {
		t.Fatalf("empty Stats = %+v, %v", s, err)
	}

	e1 := mustAppend(t, o, "s")
	mustAppend(t, o, "s")
	mustAppend(t, o, "s")
	select {
	case <-o.Changed():
	default:
		t.Fatal("Changed did not fire after append")
	}
	if err := o.MarkDelivered(ctx, e1.ID, "no-such-id"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-o.Changed():
		t.Fatal("Changed fired after MarkDelivered")
	default:
	}
	s, err = o.Stats(ctx)
	if err != nil || s.Pending != 2 || s.Delivered != 1 || s.OldestPending.IsZero() || s.LastDelivery.IsZero() {
		t.Fatalf("Stats = %+v, %v", s, err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"pending", "delivered", "dropped", "oldest_pending_age_s", "bytes_on_disk", "last_delivery"} {
		if _, ok := m[k]; !ok {
			t.Errorf("Stats JSON %s lacks %q", b, k)
		}
	}
	if m["pending"] != 2.0 || m["dropped"] != 0.0 {
		t.Errorf("Stats JSON %s", b)
	}
	var attempts int
	if err := o.db.QueryRow(`SELECT attempts FROM outbox WHERE id = ?`, e1.ID).Scan(&attempts); err != nil || attempts != 1 {
		t.Fatalf("attempts after delivery = %d (%v), want 1", attempts, err)
	}
}

func TestClosed(t *testing.T) {
	o, _ := openTemp(t, Options{})
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := o.Append(ctx, "s", "t", payloadOf); !errors.Is(err, ErrClosed) {
		t.Errorf("Append: %v", err)
	}
	if _, err := o.Pending(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Pending: %v", err)
	}
	if err := o.MarkDelivered(ctx, "x"); !errors.Is(err, ErrClosed) {
		t.Errorf("MarkDelivered: %v", err)
	}
	if _, err := o.Stats(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Stats: %v", err)
	}
}

// BenchmarkAppend compares one transaction per record (serial: one appender, so every
// append is its own commit) with group commit (N concurrent appenders), with real passage
// records (sealed, ~600 bytes, compressed as stored) and a fixed number of appenders
// whatever GOMAXPROCS. A gate unit has few appenders (passages, events, audit rows, alerts);
// the higher counts measure the mechanism.
func BenchmarkAppend(b *testing.B) {
	payloads := []struct {
		name  string
		build func(int64, string) ([]byte, error)
	}{{"passage", passagePayload}, {"small", payloadOf}}
	for _, syncMode := range []string{"FULL", "NORMAL"} {
		for _, pl := range payloads {
			for _, appenders := range []int{1, 4, 16, 64, 128} {
				b.Run(fmt.Sprintf("%s/%s/appenders=%d", syncMode, pl.name, appenders), func(b *testing.B) {
					benchAppend(b, Options{Synchronous: syncMode}, appenders, pl.build)
				})
			}
		}
	}
}

// benchAppend appends b.N records with the given number of concurrent appenders.
func benchAppend(b *testing.B, opts Options, appenders int, build func(int64, string) ([]byte, error)) {
	opts.Logger = slog.New(slog.DiscardHandler)
	o, _ := openTemp(b, opts)
	ctx := context.Background()
	before := o.txCount.Load()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range appenders {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := o.Append(ctx, "passage", "sentinel/bench/passage", build); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(b.N)/float64(max(1, o.txCount.Load()-before)), "rows/tx")
}
