package queue

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sentinel-edge/sentinel/internal/chain"
)

// Tunables; package variables so tests can change them.
var (
	// maxBatch bounds how many waiting requests one transaction takes.
	maxBatch = 512
	// busyTimeout is SQLite's busy_timeout for every connection.
	busyTimeout = 5 * time.Second
	// now is the clock for created_at and delivered_at.
	now = time.Now
)

// Defaults of Options.
const (
	// DefaultCheckBudget bounds the start-up quick_check: it reads and checks every page and
	// row, about 1.2 s of CPU per 1,000,000 records on the reference machine
	// (docs/BENCHMARKS.md, "Queue integrity"), several times more on an ARM board. Meanwhile
	// Open reads every page on another connection (about 0.2 s per 1,000,000 records); past
	// the budget that read decides, Open starts and quick_check finishes in the background.
	DefaultCheckBudget = 1500 * time.Millisecond
	// DefaultMarkSync is how often a changed high-water mark is flushed to disk.
	DefaultMarkSync = time.Second
)

// Options configure Open.
type Options struct {
	// Synchronous is SQLite's synchronous setting: "FULL" (default) makes every commit
	// durable across power loss; "NORMAL" may lose the last commits on power loss (never
	// corrupts) and is several times faster.
	Synchronous string
	// Logger receives the outbox's few log lines; nil means slog.Default().
	Logger *slog.Logger
	// CheckBudget bounds the start-up check of an existing file (PRAGMA quick_check); 0 means
	// DefaultCheckBudget, a negative value skips the check. A damaged file makes Open fail with
	// ErrCorrupt, the file untouched. Every page of every b-tree is read at the same time;
	// when the budget runs out first, that read decides (a damaged page is still refused), Open
	// goes on (the lane keeps moving) and quick_check finishes in the background; damage it
	// finds then is logged at ERROR (docs/queue.md).
	CheckBudget time.Duration
	// MarkSync is how often the high-water mark file (mark.go) is flushed to disk after it
	// changed; 0 (or less) means DefaultMarkSync. It is written after every commit either way.
	MarkSync time.Duration
	// Chain, when set, chains every record of every stream as it is stored (prev and hash,
	// docs/records.md) and signs the head carried by queue_loss notices with its key; nil
	// stores records as built (tests, tools).
	Chain *chain.Unit

	noMark     bool // benchmarks: no high-water mark, to measure its cost
	noMarkSync bool // benchmarks: the mark written, never fsynced
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
	key  string // the path's registry key (registry.go)
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

	chain         *chain.Unit // Options.Chain: nil stores records unchained
	wc            *sql.Conn   // the writer's own connection
	wtx           *writerTx   // writer goroutine only: its transactions, statements kept
	syncFull      bool        // synchronous=FULL configured
	relaxed       bool        // writer goroutine only: wc is at synchronous=NORMAL for now
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

	mark        *markFile      // the high-water mark; nil without one (benchmarks)
	markFailing bool           // writer goroutine only: the mark could not be written
	markDone    chan struct{}  // closed when markLoop returns
	checkDone   chan struct{}  // closed when the start-up check is over (checkLate)
	qc          *quickChecking // a start-up quick_check past its budget, or nil
	opened      atomic.Bool    // Open has returned it (OpenReader may share its pool)
}

// Open opens the outbox at path, creating it (and its schema) if the file does not exist or
// is empty, and migrating an older schema. A process opens a path once (a second Open of it
// fails with ErrInUse). Before anything writes, it checks the file read-only through its own
// connection pool: it refuses, without modifying it, a file that is not a Sentinel queue
// database (ErrForeignDatabase), is from a newer version (ErrSchemaTooNew) or is damaged
// (ErrCorrupt, PRAGMA quick_check within Options.CheckBudget). Then it compares the database
// with its high-water mark (mark.go): records lost behind it are counted, logged at ERROR and
// reported by a queue_loss notice, and their seqs are never used again.
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
	key, err := canonicalPath(path)
	if err != nil {
		return nil, err
	}
	o := &Outbox{
		syncFull:  syncMode == "FULL",
		chain:     opts.Chain,
		path:      path,
		key:       key,
		log:       log.With("component", "queue"),
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
		markDone:  make(chan struct{}),
		checkDone: make(chan struct{}),
	}
	if err := claim(key, path, o); err != nil {
		return nil, err
	}
	late, err := o.open(syncMode, opts)
	if err != nil {
		release(key, o)
		return nil, err
	}
	go o.writer()
	go func() { defer close(o.purgeDone); o.purgeLoop() }()
	go func() { defer close(o.lossDone); o.lossLoop() }()
	markSync := opts.MarkSync
	if markSync <= 0 {
		markSync = DefaultMarkSync
	}
	go func() { defer close(o.markDone); o.markLoop(markSync) }()
	if late {
		go func() { defer close(o.checkDone); o.checkLate() }()
	} else {
		close(o.checkDone)
	}
	o.opened.Store(true)
	o.log.Info("queue: opened", "path", path, "synchronous", syncMode, "schema_version", schemaVersion())
	return o, nil
}

// Changed returns a channel that receives a value (non-blocking, capacity 1) after each
// commit that added rows, before the Appends in that commit return. It is the same channel
// on every call, so it suits one consumer: the Uplink.
func (o *Outbox) Changed() <-chan struct{} { return o.changed }

// Close waits for queued writes to finish, flushes the high-water mark and closes the
// database. Later calls return ErrClosed.
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
	<-o.markDone
	<-o.checkDone
	o.saveLossesAtClose()
	o.mu.Lock()
	o.closed = true
	close(o.reqs)
	o.mu.Unlock()
	<-o.done
	defer release(o.key, o)
	var errs []error
	if o.mark != nil {
		errs = append(errs, o.mark.close())
	}
	o.wtx.close()
	_ = o.wc.Close()
	errs = append(errs, o.db.Close())
	if err := errors.Join(errs...); err != nil {
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

// pendingCols is what the pending queries read of each row, in pendingRows' order. The join
// with streams is a LEFT JOIN: a row whose stream has no streams row (a damaged stream
// column) is still read, and quarantined (it has no topic to go to), instead of staying
// pending, unseen, for ever.
const pendingCols = `SELECT o.n, o.uid, o.stream, o.seq, s.stream IS NOT NULL,
		CASE WHEN o.topic = '' THEN s.topic ELSE o.topic END, o.payload, o.enc, o.created_at
	FROM outbox o `

// pendingSQL reads pending entries through the partial index: without INDEXED BY, SQLite
// prefers the rowid range and walks every delivered row before the first pending one.
const pendingSQL = pendingCols + `INDEXED BY outbox_pending LEFT JOIN streams s ON s.stream = o.stream
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

// badRow is a pending row that cannot be decoded or cannot be published.
type badRow struct {
	n      int64
	stream string
	seq    int64
	id     string // "" when the id itself is damaged
	err    error
}

// pendingRows runs one pending query. Rows whose id or payload cannot be decoded, or that
// can never be published (their stream unknown, their topic not one a broker takes), are
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
		var known bool
		var topic sql.NullString
		if err := rows.Scan(&e.n, &uid, &e.Stream, &e.Seq, &known, &topic, &e.Payload, &enc, &created); err != nil {
			return nil, nil, 0, 0, o.readErr("pending", err)
		}
		scanned++
		last = e.n
		u, err := uuid.FromBytes(uid)
		if err != nil {
			bad = append(bad, badRow{n: e.n, stream: e.Stream, seq: e.Seq, err: fmt.Errorf("id: %w: %w", err, ErrCorrupt)})
			continue
		}
		e.ID, e.Topic = u.String(), topic.String
		if err := publishable(e.Stream, known, e.Topic); err != nil {
			bad = append(bad, badRow{n: e.n, stream: e.Stream, seq: e.Seq, id: e.ID, err: err})
			continue
		}
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

// publishable says why a pending row can never be published, or nil: its stream has no
// streams row (every append writes one: the row's stream column is damaged), or its topic is
// not one a broker takes (empty: a stream that lost its topic; a broker such as Mosquitto
// closes the connection on a PUBLISH to it, so the uplink would resend it for ever and
// nothing behind it would go).
func publishable(stream string, known bool, topic string) error {
	switch {
	case !known:
		return fmt.Errorf("stream %q is not in the streams table (a damaged stream column?): the record has no topic to be published to: %w", stream, ErrCorrupt)
	case !validTopic(topic):
		return fmt.Errorf("topic %q (stream %q) is not a valid MQTT publish topic: a broker would refuse it: %w", topic, stream, ErrCorrupt)
	}
	return nil
}

// quarantine moves pending rows that cannot be decoded or published out of the outbox into
// the quarantine table (their bytes kept for analysis, never sent) and counts them as lost, in
// the loss counters and so in the next queue_loss notice. If that cannot be written now, the
// rows stay where they are and are tried again at the next read; they are skipped meanwhile.
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
			o.log.Error("queue: a stored record cannot be decoded or published and could not be quarantined now; it is skipped and tried again",
				"path", o.path, "stream", b.stream, "seq", b.seq, "id", b.id, "n", b.n, "reason", b.err, "err", err)
			continue
		}
		o.log.Error("queue: a stored record cannot be decoded or published; it is quarantined (kept in the database, never sent) and counted as lost",
			"path", o.path, "stream", b.stream, "seq", b.seq, "id", b.id, "n", b.n, "reason", b.err)
	}
}

// priorityStreams are published ahead of the others (docs/queue.md): the agent's event
// stream (fire alarms, tamper, device events, command results) and its alert stream. The
// schema's partial index outbox_priority names the same streams.
var priorityStreams = []string{"event", "alert"}

const (
	pendingPrioSQL = pendingCols + `INDEXED BY outbox_priority LEFT JOIN streams s ON s.stream = o.stream
	WHERE o.delivered_at IS NULL AND o.stream IN ('event', 'alert') AND o.n > ? AND o.n <= ? ORDER BY o.n LIMIT ?`
	pendingRoutineSQL = pendingCols + `INDEXED BY outbox_pending LEFT JOIN streams s ON s.stream = o.stream
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

// validTopic reports whether t may be published to: not empty, at most 65535 bytes, valid
// UTF-8 without wildcards, NUL or control characters (MQTT 3.1.1 section 1.5.3; Mosquitto
// closes the connection on a PUBLISH to such a topic).
func validTopic(t string) bool {
	if t == "" || len(t) > 65535 || !utf8.ValidString(t) {
		return false
	}
	return !strings.ContainsFunc(t, func(r rune) bool {
		return r == '+' || r == '#' || r <= 0x1f || (r >= 0x7f && r <= 0x9f)
	})
}

// Stats is a snapshot of the outbox for status pages, metrics and `sentinel queue stats`.
type Stats struct {
	Pending   int64 `json:"pending"`
	Delivered int64 `json:"delivered"` // delivered and still retained
	// Dropped counts records lost for good: DroppedOldest + RejectedFull + FailedWrites +
	// Quarantined + Abandoned + Missing.
	Dropped       int64     `json:"dropped"`
	DroppedOldest int64     `json:"dropped_oldest"`       // deleted undelivered to make room (drop_oldest)
	RejectedFull  int64     `json:"rejected_full"`        // refused because the outbox was full (reject_new)
	FailedWrites  int64     `json:"failed_writes"`        // lost to failed writes (disk full, I/O errors)
	Quarantined   int64     `json:"quarantined"`          // pending records that could not be decoded, set aside
	Abandoned     int64     `json:"abandoned"`            // appends whose context ended before they were written
	Missing       int64     `json:"missing"`              // seqs the database lost behind its high-water mark, or unreadable at salvage
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
	s.Dropped = s.DroppedOldest + s.RejectedFull + s.FailedWrites + s.Quarantined + s.Abandoned + s.Missing
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
	s.Quarantined, s.Abandoned, s.Missing = c.Quarantined, c.Abandoned, c.Missing
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
		Missing          int64      `json:"missing"`
		OldestPendingAge float64    `json:"oldest_pending_age_s"`
		BytesOnDisk      int64      `json:"bytes_on_disk"`
		Records          int64      `json:"records"`
		Bytes            int64      `json:"bytes"`
		LastDelivery     *time.Time `json:"last_delivery"`
	}{s.Pending, s.Delivered, s.Dropped, s.DroppedOldest, s.RejectedFull, s.FailedWrites, s.Quarantined, s.Abandoned, s.Missing,
		s.OldestPendingAge().Seconds(), s.BytesOnDisk, s.Records, s.Bytes, last})
}
