package queue

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/google/uuid"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Tunables; package variables so tests can change them.
var (
	// maxBatch bounds how many waiting requests one transaction takes.
	maxBatch = 512
	// busyTimeout is SQLite's busy_timeout for every connection.
	busyTimeout = 5 * time.Second
	// now is the clock for created_at and delivered_at.
	now = time.Now
	// pageSize is the SQLite page size of a new database: larger pages waste less space at
	// their ends (a stored record is ~250 bytes) but each commit writes whole pages
	// (docs/BENCHMARKS.md, "Queue").
	pageSize = 32768
)

// Options configure Open.
type Options struct {
	// Synchronous is SQLite's synchronous setting: "FULL" (default) makes every commit
	// durable across power loss; "NORMAL" may lose the last commits on power loss (never
	// corrupts) and is several times faster.
	Synchronous string
	// Logger receives the outbox's few log lines; nil means slog.Default().
	Logger *slog.Logger
}

// Entry is one outbox record.
type Entry struct {
	ID          string // UUID v4
	Stream      string
	Topic       string
	Seq         int64 // 1, 2, 3, ... per stream
	Payload     []byte
	CreatedAt   time.Time
	DeliveredAt time.Time // zero while pending

	n int64 // insertion order
}

// Outbox is the durable SQLite outbox. It is safe for concurrent use.
type Outbox struct {
	path string
	db   *sql.DB
	log  *slog.Logger

	mu     sync.RWMutex // guards closed and sends on reqs
	closed bool
	reqs   chan *writeReq
	done   chan struct{} // closed when the writer goroutine exits

	changed chan struct{}
	txCount atomic.Int64 // committed write transactions, for tests and debugging
	// appendGen counts commits that added rows; the uplink compares it to know whether
	// something new may be pending.
	appendGen atomic.Int64

	wc            *sql.Conn // the writer's own connection
	syncFull      bool      // synchronous=FULL configured
	relaxed       bool      // writer goroutine only: wc is at synchronous=NORMAL for now
	capMu         sync.Mutex
	capacity      Capacity
	capSet        bool         // SetCapacity was called: purging is on
	purges        atomic.Int64 // purge transactions, for tests
	failedUnsaved atomic.Int64 // appends lost to failed transactions, not yet in counters
	// abandonedUnsaved counts appends whose context ended before the writer took them, not
	// yet in counters.
	abandonedUnsaved atomic.Int64
	lossNow          chan struct{}     // wakes lossLoop: losses wait to be saved
	lossDone         chan struct{}     // closed when lossLoop returns
	lossFlushes      atomic.Int64      // transactions lossLoop tried, for tests
	topics           map[string]string // writer goroutine only: stream → its topic
	failing          bool              // writer goroutine only: in a run of failed writes
	rejecting        bool              // writer goroutine only: in a run of rejections (full)
	stop             chan struct{}     // closed by Close
	purgeNow         chan struct{}
	purgeDone        chan struct{}
}

// Open opens the outbox at path, creating it (and its schema) if the file does not exist or
// is empty, and migrating an older schema. It refuses, without modifying it, a file that is
// not a Sentinel queue database (ErrForeignDatabase) or is from a newer version
// (ErrSchemaTooNew).
func Open(path string, opts Options) (*Outbox, error) {
	syncMode := strings.ToUpper(strings.TrimSpace(opts.Synchronous))
	switch syncMode {
	case "":
		syncMode = "FULL"
	case "FULL", "NORMAL":
	default:
		return nil, fmt.Errorf("queue: open %s: synchronous must be FULL or NORMAL, got %q: %w", path, opts.Synchronous, ErrInvalid)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "queue")

	if err := checkExisting(path); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite3", dsn(path, "_journal_mode=WAL&_synchronous="+syncMode+
		fmt.Sprintf("&_busy_timeout=%d", busyTimeout.Milliseconds())+"&_foreign_keys=on&_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("queue: open %s: %w", path, err)
	}
	db.SetMaxIdleConns(4)
	ctx := context.Background()
	if err := migrate(ctx, db); err != nil {
		_ = db.Close()
		return nil, fileError(path, err)
	}
	wc, err := db.Conn(ctx)
	if err != nil {
		_ = db.Close()
		return nil, fileError(path, err)
	}
	o := &Outbox{
		syncFull:  syncMode == "FULL",
		path:      path,
		db:        db,
		wc:        wc,
		log:       log,
		reqs:      make(chan *writeReq, 1024),
		done:      make(chan struct{}),
		changed:   make(chan struct{}, 1),
		capacity:  Capacity{OnFull: OnFullRejectNew},
		topics:    make(map[string]string),
		stop:      make(chan struct{}),
		purgeNow:  make(chan struct{}, 1),
		purgeDone: make(chan struct{}),
		lossNow:   make(chan struct{}, 1),
		lossDone:  make(chan struct{}),
	}
	go o.writer()
	go func() { defer close(o.purgeDone); o.purgeLoop() }()
	go func() { defer close(o.lossDone); o.lossLoop() }()
	log.Info("queue: opened", "path", path, "synchronous", syncMode, "schema_version", schemaVersion())
	return o, nil
}

// dsn builds a go-sqlite3 URI for path with the given query parameters.
func dsn(path, params string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(path) + "?" + params
}

var sqliteHeader = []byte("SQLite format 3\x00")

// checkExisting inspects an existing file read-only and decides whether it is ours, empty,
// or foreign. A missing or zero-length file is fine (it will be created).
func checkExisting(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("queue: open %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("queue: open %s: %w", path, err)
	}
	if fi.IsDir() {
		f.Close()
		return fmt.Errorf("queue: open %s: is a directory: %w", path, ErrInvalid)
	}
	if fi.Size() == 0 {
		f.Close()
		return nil
	}
	head := make([]byte, len(sqliteHeader))
	_, err = io.ReadFull(f, head)
	f.Close()
	if err != nil || !bytes.Equal(head, sqliteHeader) {
		return foreign(path, "it is not an SQLite database")
	}

	// An SQLite file: look inside without writing (mode=ro; no journal_mode pragma).
	db, err := sql.Open("sqlite3", dsn(path, "mode=ro"))
	if err != nil {
		return fmt.Errorf("queue: open %s: %w", path, err)
	}
	defer db.Close()
	var app, ver int
	var tables []string
	err = func() error {
		if err := db.QueryRow("PRAGMA application_id").Scan(&app); err != nil {
			return err
		}
		if err := db.QueryRow("PRAGMA user_version").Scan(&ver); err != nil {
			return err
		}
		rows, err := db.Query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return err
			}
			tables = append(tables, n)
		}
		return rows.Err()
	}()
	if err != nil {
		return fileError(path, err)
	}
	switch {
	case app == ApplicationID && ver > schemaVersion():
		return fmt.Errorf("queue: open %s: schema version %d, this program knows up to %d; upgrade the agent, or move it aside to start an empty queue: %w",
			path, ver, schemaVersion(), ErrSchemaTooNew)
	case app == ApplicationID:
		return nil
	case app == 0 && ver == 0 && len(tables) == 0:
		return nil // an empty SQLite database
	case app != 0:
		return foreign(path, fmt.Sprintf("it is an SQLite database with application_id %#x, not %#x", app, ApplicationID))
	default:
		return foreign(path, fmt.Sprintf("it is an SQLite database of another application (tables %s)", strings.Join(tables, ", ")))
	}
}

func foreign(path, why string) error {
	return fmt.Errorf("queue: open %s: %s; it was left untouched: move it aside (or point the queue at another path) and start again: %w",
		path, why, ErrForeignDatabase)
}

// fileError maps SQLite's "not a database" and "corrupt" errors to the package sentinels,
// naming the file and what to do.
func fileError(path string, err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrNotADB:
			return fmt.Errorf("queue: open %s: %v; move it aside and start again: %w", path, err, ErrForeignDatabase)
		case sqlite3.ErrCorrupt:
			return fmt.Errorf("queue: open %s: %v; move it aside (keep it for analysis) and start again: %w", path, err, ErrCorrupt)
		}
	}
	return fmt.Errorf("queue: open %s: %w", path, err)
}

// Changed returns a channel that receives a value (non-blocking, capacity 1) after each
// commit that added rows, before the Appends in that commit return. It is the same channel
// on every call, so it suits one consumer: the Uplink.
func (o *Outbox) Changed() <-chan struct{} { return o.changed }

// Close waits for queued writes to finish and closes the database. Later calls return
// ErrClosed.
func (o *Outbox) Close() error {
	o.mu.Lock()
	if o.closed || o.isStopping() {
		o.mu.Unlock()
		return ErrClosed
	}
	close(o.stop)
	o.mu.Unlock()
	<-o.purgeDone // it submits to reqs: stop it before closing reqs
	<-o.lossDone  // so does it
	o.saveLossesAtClose()
	o.mu.Lock()
	o.closed = true
	close(o.reqs)
	o.mu.Unlock()
	<-o.done
	_ = o.wc.Close()
	if err := o.db.Close(); err != nil {
		return fmt.Errorf("queue: close %s: %w", o.path, err)
	}
	return nil
}

func (o *Outbox) isStopping() bool {
	select {
	case <-o.stop:
		return true
	default:
		return false
	}
}

func (o *Outbox) isClosed() bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.closed
}

// Pending returns up to limit undelivered entries, oldest first (insertion order). A limit
// <= 0 means no limit.
func (o *Outbox) Pending(ctx context.Context, limit int) ([]Entry, error) {
	return o.pendingRange(ctx, 0, -1, limit)
}

// pendingSQL reads pending entries through the partial index: without INDEXED BY, SQLite
// prefers the rowid range and walks every delivered row before the first pending one.
const pendingSQL = `SELECT o.n, o.uid, o.stream, o.seq,
		CASE WHEN o.topic = '' THEN s.topic ELSE o.topic END, o.payload, o.enc, o.created_at
	FROM outbox o INDEXED BY outbox_pending JOIN streams s ON s.stream = o.stream
	WHERE o.delivered_at IS NULL AND o.n > ? AND o.n <= ? ORDER BY o.n LIMIT ?`

// pendingRange returns up to limit undelivered entries with after < n and, when upTo >= 0,
// n <= upTo, in insertion order.
func (o *Outbox) pendingRange(ctx context.Context, after, upTo int64, limit int) ([]Entry, error) {
	return o.pendingQuery(ctx, pendingSQL, after, upTo, limit)
}

func (o *Outbox) pendingQuery(ctx context.Context, query string, after, upTo int64, limit int) ([]Entry, error) {
	if o.isClosed() {
		return nil, ErrClosed
	}
	if upTo < 0 {
		upTo = math.MaxInt64
	}
	var out []Entry
	for {
		want := -1 // SQLite: no limit
		if limit > 0 {
			want = limit - len(out)
		}
		es, bad, scanned, last, err := o.pendingRows(ctx, query, after, upTo, want)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
		if len(bad) == 0 {
			return out, nil
		}
		o.quarantine(ctx, bad)
		if want < 0 || scanned < want {
			return out, nil // the read saw every row there was
		}
		after = last // rows were set aside: read on for the ones they stood in for
	}
}

// badRow is a pending row that cannot be decoded.
type badRow struct {
	n      int64
	stream string
	seq    int64
	id     string // "" when the id itself is damaged
	err    error
}

// pendingRows runs one pending query. Rows whose id or payload cannot be decoded are
// returned apart (bad), so that one damaged row never stops the rows behind it; scanned
// counts every row read and last is the insertion number of the last one.
func (o *Outbox) pendingRows(ctx context.Context, query string, after, upTo int64, limit int) (out []Entry, bad []badRow, scanned int, last int64, err error) {
	rows, err := o.db.QueryContext(ctx, query, after, upTo, limit)
	if err != nil {
		return nil, nil, 0, 0, o.readErr("pending", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e Entry
		var created int64
		var enc int
		var uid []byte
		if err := rows.Scan(&e.n, &uid, &e.Stream, &e.Seq, &e.Topic, &e.Payload, &enc, &created); err != nil {
			return nil, nil, 0, 0, o.readErr("pending", err)
		}
		scanned++
		last = e.n
		u, err := uuid.FromBytes(uid)
		if err != nil {
			bad = append(bad, badRow{n: e.n, stream: e.Stream, seq: e.Seq, err: fmt.Errorf("id: %w: %w", err, ErrCorrupt)})
			continue
		}
		e.ID = u.String()
		if e.Payload, err = decode(e.Payload, enc, e.ID); err != nil {
			bad = append(bad, badRow{n: e.n, stream: e.Stream, seq: e.Seq, id: e.ID, err: err})
			continue
		}
		e.CreatedAt = time.UnixMilli(created)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, 0, 0, o.readErr("pending", err)
	}
	return out, bad, scanned, last, nil
}

// quarantine moves pending rows that cannot be decoded out of the outbox into the quarantine
// table (their bytes kept for analysis, never sent) and counts them as lost, in the loss
// counters and so in the next queue_loss notice. If that cannot be written now, the rows stay
// where they are and are tried again at the next read; they are skipped meanwhile.
func (o *Outbox) quarantine(ctx context.Context, bad []badRow) {
	r := &writeReq{kind: opQuarantine, ctx: ctx, done: make(chan struct{})}
	for _, b := range bad {
		r.ns = append(r.ns, b.n)
		r.reasons = append(r.reasons, b.err.Error())
	}
	err := o.submit(ctx, r)
	if err == nil {
		err = r.err
	}
	for _, b := range bad {
		if err != nil {
			o.log.Error("queue: a stored record cannot be decoded and could not be quarantined now; it is skipped and tried again",
				"path", o.path, "stream", b.stream, "seq", b.seq, "id", b.id, "n", b.n, "reason", b.err, "err", err)
			continue
		}
		o.log.Error("queue: a stored record cannot be decoded; it is quarantined (kept in the database, never sent) and counted as lost",
			"path", o.path, "stream", b.stream, "seq", b.seq, "id", b.id, "n", b.n, "reason", b.err)
	}
}

// priorityStreams are published ahead of the others (docs/queue.md): the agent's event
// stream (fire alarms, tamper, device events, command results) and its alert stream. The
// schema's partial index outbox_priority names the same streams.
var priorityStreams = []string{"event", "alert"}

const (
	pendingPrioSQL = `SELECT o.n, o.uid, o.stream, o.seq,
		CASE WHEN o.topic = '' THEN s.topic ELSE o.topic END, o.payload, o.enc, o.created_at
	FROM outbox o INDEXED BY outbox_priority JOIN streams s ON s.stream = o.stream
	WHERE o.delivered_at IS NULL AND o.stream IN ('event', 'alert') AND o.n > ? AND o.n <= ? ORDER BY o.n LIMIT ?`
	pendingRoutineSQL = `SELECT o.n, o.uid, o.stream, o.seq,
		CASE WHEN o.topic = '' THEN s.topic ELSE o.topic END, o.payload, o.enc, o.created_at
	FROM outbox o INDEXED BY outbox_pending JOIN streams s ON s.stream = o.stream
	WHERE o.delivered_at IS NULL AND o.stream NOT IN ('event', 'alert') AND o.n > ? AND o.n <= ? ORDER BY o.n LIMIT ?`
)

// pendingClass is pendingRange restricted to the priority streams (prio) or to the others.
func (o *Outbox) pendingClass(ctx context.Context, prio bool, after, upTo int64, limit int) ([]Entry, error) {
	q := pendingRoutineSQL
	if prio {
		q = pendingPrioSQL
	}
	return o.pendingQuery(ctx, q, after, upTo, limit)
}

// lastPendingN returns the insertion number of the newest pending entry, 0 if none.
func (o *Outbox) lastPendingN(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	if err := o.db.QueryRowContext(ctx, `SELECT MAX(n) FROM outbox INDEXED BY outbox_pending WHERE delivered_at IS NULL`).Scan(&n); err != nil {
		return 0, o.readErr("pending", err)
	}
	return n.Int64, nil
}

func (o *Outbox) readErr(op string, err error) error {
	if o.isClosed() {
		return ErrClosed
	}
	return fmt.Errorf("queue: %s: %w", op, err)
}

// Append assigns the next seq of stream and a new UUID, calls build(seq, id) for the
// payload and commits the row durably before it returns. Concurrent appends share
// transactions (group commit). build runs on the writer goroutine while other appends wait,
// so it must be quick and must not call the Outbox; if it fails, only this append fails and
// the seq is not used. build may be called again with another seq (when an earlier append of
// the same transaction and stream was not stored); only the payload stored counts. If ctx
// ends before the append was taken up, Append returns ctx.Err() and nothing is written; once
// taken up, it waits for the commit.
func (o *Outbox) Append(ctx context.Context, stream, topic string, build func(seq int64, id string) ([]byte, error)) (Entry, error) {
	return o.AppendID(ctx, stream, topic, "", build)
}

// AppendID is Append with an id chosen by the caller, for a record whose id had to be known
// before it was stored (a passage's id travels with its platform call). id must be a UUID in
// canonical form (lower case, with hyphens, as uuid.NewString makes it) that was never used;
// empty means a new one.
func (o *Outbox) AppendID(ctx context.Context, stream, topic, id string, build func(seq int64, id string) ([]byte, error)) (Entry, error) {
	var uid uuid.UUID
	if id != "" {
		var err error
		if uid, err = uuid.Parse(id); err != nil || uid.String() != id || uid == (uuid.UUID{}) {
			return Entry{}, fmt.Errorf("queue: append to %s: id %q is not a UUID in canonical form (lower case, with hyphens): %w", stream, id, ErrInvalid)
		}
	}
	switch {
	case stream == "":
		return Entry{}, fmt.Errorf("queue: append: empty stream: %w", ErrInvalid)
	case !validTopic(topic):
		return Entry{}, fmt.Errorf("queue: append to %s: topic %q is not a valid MQTT publish topic: %w", stream, topic, ErrInvalid)
	case build == nil:
		return Entry{}, fmt.Errorf("queue: append to %s: nil build func: %w", stream, ErrInvalid)
	}
	r := &writeReq{kind: opAppend, ctx: ctx, stream: stream, topic: topic, uid: uid, build: build, done: make(chan struct{})}
	if err := o.submit(ctx, r); err != nil {
		if !errors.Is(err, ErrClosed) {
			o.countAbandoned() // ctx ended before the writer took it: a lost record
		}
		return Entry{}, err
	}
	return r.entry, r.err
}

// MarkDelivered marks the entries with the given ids delivered (ids are not indexed: each is
// looked for among the pending entries; the uplink marks by position instead) (and counts the publish that
// delivered them), in one transaction shared with other writes. Unknown or already delivered
// ids are ignored.
func (o *Outbox) MarkDelivered(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		if o.isClosed() {
			return ErrClosed
		}
		return nil
	}
	r := &writeReq{kind: opMark, ctx: ctx, ids: ids, done: make(chan struct{})}
	if err := o.submit(ctx, r); err != nil {
		return err
	}
	return r.err
}

// markDelivered marks entries delivered by their insertion numbers.
func (o *Outbox) markDelivered(ctx context.Context, entries []Entry) error {
	ns := make([]int64, len(entries))
	for i, e := range entries {
		ns[i] = e.n
	}
	r := &writeReq{kind: opMark, ctx: ctx, ns: ns, done: make(chan struct{})}
	if err := o.submit(ctx, r); err != nil {
		return err
	}
	return r.err
}

// addAttempts counts one failed publish for each entry, asynchronously and best-effort: the
// counter is diagnostic, and it rides along with the next transaction.
func (o *Outbox) addAttempts(entries []Entry) {
	if len(entries) == 0 {
		return
	}
	ns := make([]int64, len(entries))
	for i, e := range entries {
		ns[i] = e.n
	}
	r := &writeReq{kind: opAttempt, ctx: context.Background(), ns: ns}
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.closed {
		return
	}
	select {
	case o.reqs <- r:
	default: // writer saturated: skip the diagnostic update rather than block the uplink
	}
}

// submit hands r to the writer and waits for it. It returns a non-nil error only if r never
// reached the writer (closed, or ctx ended first); the outcome is otherwise in r.err.
func (o *Outbox) submit(ctx context.Context, r *writeReq) error {
	o.mu.RLock()
	if o.closed {
		o.mu.RUnlock()
		return ErrClosed
	}
	select {
	case o.reqs <- r:
	case <-ctx.Done():
		o.mu.RUnlock()
		return ctx.Err()
	}
	o.mu.RUnlock()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		if r.state.CompareAndSwap(stateQueued, stateAbandoned) {
			return ctx.Err()
		}
		<-r.done // the writer has it: the outcome is decided within one commit
		return nil
	}
}

// validTopic reports whether t may be published to: not empty, no wildcards, no NUL, and
// at most 65535 bytes.
func validTopic(t string) bool {
	return t != "" && len(t) <= 65535 && !strings.ContainsAny(t, "+#\x00")
}

// Stats is a snapshot of the outbox for status pages, metrics and `sentinel queue stats`.
type Stats struct {
	Pending   int64 `json:"pending"`
	Delivered int64 `json:"delivered"` // delivered and still retained
	// Dropped counts records lost for good: DroppedOldest + RejectedFull + FailedWrites +
	// Quarantined + Abandoned.
	Dropped       int64     `json:"dropped"`
	DroppedOldest int64     `json:"dropped_oldest"`       // deleted undelivered to make room (drop_oldest)
	RejectedFull  int64     `json:"rejected_full"`        // refused because the outbox was full (reject_new)
	FailedWrites  int64     `json:"failed_writes"`        // lost to failed writes (disk full, I/O errors)
	Quarantined   int64     `json:"quarantined"`          // pending records that could not be decoded, set aside
	Abandoned     int64     `json:"abandoned"`            // appends whose context ended before they were written
	OldestPending time.Time `json:"oldest_pending_age_s"` // JSON: age in seconds at snapshot time, 0 if none
	LastDelivery  time.Time `json:"last_delivery"`        // JSON: RFC 3339, null if never
	BytesOnDisk   int64     `json:"bytes_on_disk"`        // database, WAL and shared-memory files
	Records       int64     `json:"records"`              // stored records, pending and delivered
	Bytes         int64     `json:"bytes"`                // accounted size, what queue.max_bytes bounds

	at time.Time // when the snapshot was taken
}

// Stats returns counts and ages. It reads without blocking writers. Losses not yet saved
// (the disk is still full) are included.
func (o *Outbox) Stats(ctx context.Context) (Stats, error) {
	if o.isClosed() {
		return Stats{}, ErrClosed
	}
	s, err := readStats(ctx, o.db, o.path)
	if err != nil {
		return Stats{}, o.readErr("stats", err)
	}
	s.FailedWrites += o.failedUnsaved.Load()
	s.Abandoned += o.abandonedUnsaved.Load()
	s.Dropped = s.DroppedOldest + s.RejectedFull + s.FailedWrites + s.Quarantined + s.Abandoned
	return s, nil
}

func readStats(ctx context.Context, db *sql.DB, path string) (Stats, error) {
	var s Stats
	var oldest, last sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL),
		(SELECT COUNT(*) FROM outbox WHERE delivered_at IS NOT NULL),
		(SELECT created_at FROM outbox INDEXED BY outbox_pending WHERE delivered_at IS NULL ORDER BY n LIMIT 1),
		(SELECT MAX(delivered_at) FROM outbox WHERE delivered_at IS NOT NULL)`).Scan(&s.Pending, &s.Delivered, &oldest, &last)
	if err != nil {
		return Stats{}, err
	}
	c, err := readCounters(ctx, db)
	if err != nil {
		return Stats{}, err
	}
	s.DroppedOldest, s.RejectedFull, s.FailedWrites = c.DroppedOldest, c.RejectedFull, c.FailedWrites
	s.Quarantined, s.Abandoned = c.Quarantined, c.Abandoned
	s.Dropped = c.lost()
	s.Records, s.Bytes = c.Rows, c.Bytes
	s.at = now()
	if oldest.Valid {
		s.OldestPending = time.UnixMilli(oldest.Int64)
	}
	if last.Valid {
		s.LastDelivery = time.UnixMilli(last.Int64)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(p); err == nil {
			s.BytesOnDisk += fi.Size()
		}
	}
	return s, nil
}

// OldestPendingAge returns how old the oldest pending entry was when the snapshot was taken,
// or 0 if nothing was pending.
func (s Stats) OldestPendingAge() time.Duration {
	if s.OldestPending.IsZero() {
		return 0
	}
	at := s.at
	if at.IsZero() {
		at = now()
	}
	if d := at.Sub(s.OldestPending); d > 0 {
		return d
	}
	return 0
}

// MarshalJSON writes the oldest pending entry as an age in seconds and a zero LastDelivery
// as null.
func (s Stats) MarshalJSON() ([]byte, error) {
	var last *time.Time
	if !s.LastDelivery.IsZero() {
		t := s.LastDelivery.UTC()
		last = &t
	}
	return json.Marshal(struct {
		Pending          int64      `json:"pending"`
		Delivered        int64      `json:"delivered"`
		Dropped          int64      `json:"dropped"`
		DroppedOldest    int64      `json:"dropped_oldest"`
		RejectedFull     int64      `json:"rejected_full"`
		FailedWrites     int64      `json:"failed_writes"`
		Quarantined      int64      `json:"quarantined"`
		Abandoned        int64      `json:"abandoned"`
		OldestPendingAge float64    `json:"oldest_pending_age_s"`
		BytesOnDisk      int64      `json:"bytes_on_disk"`
		Records          int64      `json:"records"`
		Bytes            int64      `json:"bytes"`
		LastDelivery     *time.Time `json:"last_delivery"`
	}{s.Pending, s.Delivered, s.Dropped, s.DroppedOldest, s.RejectedFull, s.FailedWrites, s.Quarantined, s.Abandoned,
		s.OldestPendingAge().Seconds(), s.BytesOnDisk, s.Records, s.Bytes, last})
}
