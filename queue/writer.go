package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

type opKind int

const (
	opAppend opKind = iota
	opMark
	opAttempt
	opPurge
	// opQuarantine moves pending rows that cannot be decoded (ns) into the quarantine table.
	opQuarantine
	// opFlush saves the losses counted in memory (failed writes, abandoned appends) and
	// writes the queue_loss notice they call for.
	opFlush
)

const (
	stateQueued int32 = iota
	stateTaken
	stateAbandoned
)

// writeReq is one write waiting for the writer goroutine.
type writeReq struct {
	kind  opKind
	ctx   context.Context
	state atomic.Int32
	done  chan struct{} // closed when entry/err are final; nil for fire-and-forget

	// opAppend
	stream, topic string
	uid           uuid.UUID // chosen by the caller; zero for a new UUID
	build         func(seq int64, id string) ([]byte, error)
	entry         Entry

	// opMark, opAttempt: by id (ids) or by insertion number (ns)
	ids []string
	ns  []int64

	// opPurge
	purged int64

	// opQuarantine: why each row of ns cannot be decoded
	reasons []string

	// opFlush: noNotice saves the counters without the notice (a smaller write, for a disk
	// that is nearly full); noticeSkipped reports that a notice was due and not written.
	noNotice, noticeSkipped bool

	err error
}

func (r *writeReq) finish(err error) {
	if r.err == nil {
		r.err = err
	}
	if r.done != nil {
		close(r.done)
	}
}

// writer is the single goroutine that writes. It takes whatever requests are waiting (up to
// maxBatch) and commits them in one transaction, so concurrent callers share one fsync.
//
// Gathering: the callers a commit has just released come back a moment later with their
// next request; taking only those already back would split them into alternate halves (two
// commits where one would do). So while fewer requests are waiting than the last commit
// held, the writer yields (runtime.Gosched, no timer) and takes what arrived, as long as each
// yield brings more. A single caller (last commit 1) never waits.
func (o *Outbox) writer() {
	defer close(o.done)
	batch := make([]*writeReq, 0, maxBatch)
	lastBatch := 0
	for first := range o.reqs {
		batch = append(batch[:0], first)
		open := o.take(&batch)
		for idle, yields := 0, 0; open && yields < maxYields && len(batch) < min(lastBatch, maxBatch); yields++ {
			runtime.Gosched()
			n := len(batch)
			open = o.take(&batch)
			if len(batch) > n {
				idle = 0
			} else if idle++; idle >= maxIdleYields {
				break // nobody else is coming
			}
		}
		o.commit(batch)
		lastBatch = len(batch)
		clear(batch)
	}
}

// maxYields bounds the yields of one gathering; maxIdleYields in a row that bring nothing
// end it.
const maxYields, maxIdleYields = 64, 2

// take appends the waiting requests to batch, up to maxBatch; it reports false when reqs is
// closed.
func (o *Outbox) take(batch *[]*writeReq) bool {
	for len(*batch) < maxBatch {
		select {
		case r, ok := <-o.reqs:
			if !ok {
				return false
			}
			*batch = append(*batch, r)
		default:
			return true
		}
	}
	return true
}

// commit runs batch in one transaction and completes every request in it.
func (o *Outbox) commit(batch []*writeReq) {
	live := batch[:0:0]
	appends, durable := 0, 0
	for _, r := range batch {
		if !r.state.CompareAndSwap(stateQueued, stateTaken) {
			continue // the caller gave up; it was told ctx.Err() (and Append counted it)
		}
		if err := r.ctx.Err(); err != nil && r.done != nil {
			if r.kind == opAppend {
				o.countAbandoned() // saved by this transaction or by lossLoop
			}
			r.finish(err)
			continue
		}
		live = append(live, r)
		switch r.kind {
		case opAppend:
			appends++
		case opQuarantine, opFlush:
			durable++ // loss counters: committed at the configured level, like appends
		}
	}
	if len(live) == 0 {
		return
	}

	seqs := make(map[string]int64)
	appended, err := false, o.setRelaxed(appends+durable == 0)
	if err == nil {
		appended, err = o.runTx(live, seqs)
	}
	if err != nil {
		if appends > 0 {
			// A failed write (disk full, I/O error): the records are lost for good. Count
			// them; the count is saved with the next transaction that succeeds.
			n := o.failedUnsaved.Add(int64(appends))
			o.signalLoss()
			if !o.failing {
				o.failing = true
				o.log.Error("queue: records could NOT be written; the gate keeps deciding and each loss is counted",
					"path", o.path, "lost", appends, "lost_unsaved", n, "err", err)
			}
		}
		for _, r := range live {
			r.entry = Entry{}
			r.finish(err)
		}
		return
	}
	if o.failing && appends+durable > 0 {
		o.failing = false
		o.log.Warn("queue: writes succeed again", "path", o.path)
	}
	o.txCount.Add(1)
	// After the commit, so the mark is never ahead of what is committed.
	o.advanceMark(seqs)
	if appended { // before finishing, so Changed has fired by the time Append returns
		o.appendGen.Add(1)
		select {
		case o.changed <- struct{}{}:
		default:
		}
	}
	for _, r := range live {
		r.finish(nil)
	}
}

// setRelaxed switches the writer's connection between the configured synchronous=FULL and
// NORMAL. A transaction without appends (delivery marks, attempt counts, purges) needs no
// fsync of its own: lost on power loss, its records are sent again (at least once, the
// platform de-duplicates on id) or purged again. Every later FULL commit syncs the WAL, and
// with it these transactions too. Appends are always committed at the configured level.
// It fails only when FULL cannot be restored; then the transaction must not run.
func (o *Outbox) setRelaxed(relax bool) error {
	if !o.syncFull || relax == o.relaxed {
		return nil
	}
	mode := "FULL"
	if relax {
		mode = "NORMAL"
	}
	if _, err := o.wc.ExecContext(context.Background(), "PRAGMA synchronous = "+mode); err != nil {
		if relax {
			return nil // stays FULL: slower, never less durable
		}
		return fmt.Errorf("queue: restore synchronous=FULL: %w", err)
	}
	o.relaxed = relax
	return nil
}

// runTx executes live in one transaction. Per-request failures (a build error, a full
// outbox) are stored in the request; a returned error fails the whole transaction. seqs
// receives the last seq this transaction used per stream.
func (o *Outbox) runTx(live []*writeReq, seqs map[string]int64) (appended bool, err error) {
	ctx := context.Background() // one caller's ctx must not abort the others' commit
	tx, err := o.wc.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("queue: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
			clear(o.topics) // it may hold a stream whose first row was rolled back
		}
	}()
	t := &txRun{
		o: o, ctx: ctx, tx: tx, seqs: seqs, ts: now().UnixMilli(),
		st:            &txState{tx: tx, cap: o.capacityNow()},
		stmts:         map[string]*sql.Stmt{},
		streamRow:     map[string]bool{},
		failedUnsaved: o.failedUnsaved.Load(), abandonedUnsaved: o.abandonedUnsaved.Load(),
	}
	pre, err := o.prepare(ctx, tx, live)
	if err != nil {
		return false, err
	}
	for i, r := range live {
		if err := t.do(r, &pre[i]); err != nil {
			return false, err
		}
	}
	if err := t.finish(live); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("queue: commit: %w", err)
	}
	if t.st.loaded {
		o.failedUnsaved.Add(-t.failedUnsaved)
		o.abandonedUnsaved.Add(-t.abandonedUnsaved)
	}
	o.logCapacity(t.st, t.rejected)
	return t.appended, nil
}

// txRun is one write transaction of the writer goroutine while it runs.
type txRun struct {
	o    *Outbox
	ctx  context.Context
	tx   *sql.Tx
	st   *txState
	seqs map[string]int64 // the last seq used per stream, so far
	ts   int64            // the transaction's time, Unix milliseconds

	stmts     map[string]*sql.Stmt // prepared once per transaction, by query
	streamRow map[string]bool      // streams whose row this transaction has upserted

	noNotice                        bool  // an opFlush asked for the counters without the notice
	rejected                        int   // appends refused: the outbox is full
	appended                        bool  // a row was inserted
	failedUnsaved, abandonedUnsaved int64 // losses counted in memory, saved by this transaction
}

// stmt prepares q once per transaction.
func (t *txRun) stmt(q string) (*sql.Stmt, error) {
	if s, ok := t.stmts[q]; ok {
		return s, nil
	}
	s, err := t.tx.PrepareContext(t.ctx, q)
	if err != nil {
		return nil, fmt.Errorf("queue: prepare: %w", err)
	}
	t.stmts[q] = s
	return s, nil
}

// do runs one request.
func (t *txRun) do(r *writeReq, p *prepared) error {
	switch r.kind {
	case opAppend:
		return t.appendOne(r, p)
	case opMark:
		return t.mark(r)
	case opAttempt:
		return t.attempt(r)
	case opPurge:
		return t.purge(r)
	case opQuarantine:
		if err := t.st.load(t.ctx); err != nil {
			return err
		}
		return t.o.quarantineRows(t.ctx, t.st, r, t.ts)
	case opFlush:
		if err := t.st.load(t.ctx); err != nil {
			return err
		}
		t.noNotice = t.noNotice || r.noNotice
	}
	return nil
}

// storedTopic is what the row holds: "" when topic is its stream's topic (the first topic
// the stream was appended with).
func (t *txRun) storedTopic(stream, topic string) (string, error) {
	canon, ok := t.o.topics[stream]
	if !ok {
		err := t.tx.QueryRowContext(t.ctx, `SELECT topic FROM streams WHERE stream = ?`, stream).Scan(&canon)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return "", fmt.Errorf("queue: append to %s: read topic: %w", stream, err)
		}
		if canon == "" {
			canon = topic // the upsert in insert makes it the stream's topic
		}
		t.o.topics[stream] = canon
	}
	if topic == canon {
		return "", nil
	}
	return topic, nil
}

// insert stores one row with the given seq.
func (t *txRun) insert(stream, topic string, id uuid.UUID, seq int64, stored []byte, enc int) error {
	rowTopic, err := t.storedTopic(stream, topic)
	if err != nil {
		return err
	}
	if !t.streamRow[stream] {
		// Once per stream and transaction: create the row the outbox row refers to and fix
		// the stream's topic; last_seq is written at the end.
		up, err := t.stmt(`INSERT INTO streams (stream, last_seq, topic) VALUES (?, ?, ?)
			ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq,
				topic = CASE WHEN streams.topic = '' THEN excluded.topic ELSE streams.topic END`)
		if err != nil {
			return err
		}
		if _, err := up.ExecContext(t.ctx, stream, seq, topic); err != nil {
			return fmt.Errorf("queue: append to %s: %w", stream, err)
		}
		t.streamRow[stream] = true
	}
	ins, err := t.stmt(`INSERT INTO outbox (uid, stream, seq, topic, payload, enc, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	if _, err := ins.ExecContext(t.ctx, id[:], stream, seq, rowTopic, stored, enc, t.ts); err != nil {
		return fmt.Errorf("queue: append to %s: %w", stream, err)
	}
	t.seqs[stream] = seq
	t.st.c.Rows++
	t.st.c.Bytes += rowSize(len(stored), len(rowTopic))
	t.st.changed = true
	return nil
}

// appendOne stores one prepared append, or records in r why it is not stored.
func (t *txRun) appendOne(r *writeReq, p *prepared) error {
	if err := t.st.load(t.ctx); err != nil {
		return err
	}
	last, err := t.o.lastSeq(t.ctx, t.tx, t.seqs, r.stream)
	if err != nil {
		return err
	}
	if p.seq != last+1 {
		// An earlier record of this stream in the transaction was not stored: build again
		// with the seq it leaves free.
		*p = t.o.prepareOne(r, last+1, p.uid)
	}
	if p.err != nil {
		r.err = p.err
		return nil
	}
	if t.st.capped() {
		rowTopic, err := t.storedTopic(r.stream, r.topic)
		if err != nil {
			return err
		}
		fits, err := t.st.makeRoom(t.ctx, rowSize(len(p.stored), len(rowTopic)))
		if err != nil {
			return err
		}
		if !fits {
			t.rejected++
			t.st.c.RejectedFull++
			t.st.changed = true
			r.err = fmt.Errorf("queue: append to %s: %d records, %d bytes stored (limits %d records, %d bytes), all undelivered: %w",
				r.stream, t.st.c.Rows, t.st.c.Bytes, t.st.cap.MaxRecords, t.st.cap.MaxBytes, ErrFull)
			return nil
		}
	}
	if err := t.insert(r.stream, r.topic, p.uid, p.seq, p.stored, p.enc); err != nil {
		return err
	}
	r.entry = Entry{ID: p.id, Stream: r.stream, Topic: r.topic, Seq: p.seq, Payload: p.payload, CreatedAt: time.UnixMilli(t.ts)}
	t.appended = true
	return nil
}

// mark marks rows delivered, one statement per run of consecutive insertion numbers (a
// drained backlog is one long run).
func (t *txRun) mark(r *writeReq) error {
	markRow, err := t.stmt(`UPDATE outbox SET delivered_at = ?, attempts = attempts + 1
		WHERE n BETWEEN ? AND ? AND delivered_at IS NULL`)
	if err != nil {
		return err
	}
	ns, err := t.o.resolveIDs(t.ctx, t.tx, r)
	if err != nil {
		return err
	}
	slices.Sort(ns)
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1] <= ns[j]+1 {
			j++
		}
		if _, err := markRow.ExecContext(t.ctx, t.ts, ns[i], ns[j]); err != nil {
			return fmt.Errorf("queue: mark delivered: %w", err)
		}
		i = j + 1
	}
	return nil
}

// attempt counts one failed publish of each row.
func (t *txRun) attempt(r *writeReq) error {
	attemptRow, err := t.stmt(`UPDATE outbox SET attempts = attempts + 1 WHERE n = ? AND delivered_at IS NULL`)
	if err != nil {
		return err
	}
	ns, err := t.o.resolveIDs(t.ctx, t.tx, r)
	if err != nil {
		return err
	}
	for _, n := range ns {
		if _, err := attemptRow.ExecContext(t.ctx, n); err != nil {
			return fmt.Errorf("queue: count attempt: %w", err)
		}
	}
	return nil
}

// purge deletes delivered rows older than the retention, at most purgeChunk.
func (t *txRun) purge(r *writeReq) error {
	if err := t.st.load(t.ctx); err != nil {
		return err
	}
	cutoff := t.ts - t.st.cap.Retention.Milliseconds()
	n, err := t.st.deleteRows(t.ctx, `DELETE FROM outbox WHERE n IN (SELECT n FROM outbox INDEXED BY outbox_delivered
		WHERE delivered_at IS NOT NULL AND delivered_at <= ? ORDER BY delivered_at LIMIT ?)`+returningSize, cutoff, purgeChunk)
	if err != nil {
		return fmt.Errorf("queue: purge delivered records: %w", err)
	}
	r.purged = n
	t.o.purges.Add(1)
	return nil
}

// finish ends the transaction's work: it saves the losses counted in memory, writes the
// queue_loss notice they (or others) call for, each stream's last seq and the counters.
func (t *txRun) finish(live []*writeReq) error {
	st := t.st
	if st.loaded && (t.failedUnsaved > 0 || t.abandonedUnsaved > 0) {
		st.c.FailedWrites += t.failedUnsaved
		st.c.Abandoned += t.abandonedUnsaved
		st.changed = true
	}
	// Report losses upstream as soon as there is room for the notice.
	if st.loaded && st.cap.NoticeTopic != "" && st.c.lost() > st.c.Reported {
		if t.noNotice {
			for _, r := range live {
				r.noticeSkipped = r.kind == opFlush
			}
		} else if err := t.notice(); err != nil {
			return err
		}
	}
	if len(t.seqs) > 0 {
		setLastSeq, err := t.stmt(`UPDATE streams SET last_seq = ? WHERE stream = ?`)
		if err != nil {
			return err
		}
		for stream, seq := range t.seqs {
			if _, err := setLastSeq.ExecContext(t.ctx, seq, stream); err != nil {
				return fmt.Errorf("queue: append to %s: %w", stream, err)
			}
		}
	}
	if st.changed {
		return writeCounters(t.ctx, t.tx, st.c)
	}
	return nil
}

// notice appends a queue_loss notice for the losses not reported yet, if it fits; it names
// the missing seqs found since the previous one.
func (t *txRun) notice() error {
	st := t.st
	last, err := t.o.lastSeq(t.ctx, t.tx, t.seqs, NoticeStream)
	if err != nil {
		return err
	}
	uid, err := uuid.NewRandom()
	if err != nil {
		return fmt.Errorf("queue: notice: new id: %w", err)
	}
	missing, err := unreportedGaps(t.ctx, t.tx)
	if err != nil {
		return err
	}
	payload, err := noticePayload(last+1, uid.String(), time.UnixMilli(t.ts), st.c, missing)
	if err != nil {
		return fmt.Errorf("queue: notice: %w", err)
	}
	stored, enc := encode(payload, uid.String())
	fits, err := st.makeRoom(t.ctx, rowSize(len(stored), len(st.cap.NoticeTopic)))
	if err != nil || !fits {
		return err
	}
	if err := t.insert(NoticeStream, st.cap.NoticeTopic, uid, last+1, stored, enc); err != nil {
		return err
	}
	if len(missing) > 0 {
		if _, err := t.tx.ExecContext(t.ctx, `UPDATE gaps SET reported = 1 WHERE reported = 0`); err != nil {
			return fmt.Errorf("queue: notice: %w", err)
		}
	}
	st.c.Reported = st.c.lost()
	t.appended = true
	return nil
}

// unreportedGaps returns the missing seqs no notice has named yet.
func unreportedGaps(ctx context.Context, tx *sql.Tx) ([]SeqRange, error) {
	rows, err := tx.QueryContext(ctx, `SELECT stream, first_seq, last_seq, cause FROM gaps WHERE reported = 0 ORDER BY g`)
	if err != nil {
		return nil, fmt.Errorf("queue: notice: read lost seqs: %w", err)
	}
	defer rows.Close()
	var out []SeqRange
	for rows.Next() {
		var g SeqRange
		if err := rows.Scan(&g.Stream, &g.First, &g.Last, &g.Cause); err != nil {
			return nil, fmt.Errorf("queue: notice: read lost seqs: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// logCapacity says what a transaction did to make room, once per episode for rejections.
func (o *Outbox) logCapacity(st *txState, rejected int) {
	if len(st.dropped) > 0 {
		o.log.Warn("queue: full of undelivered records; dropped the oldest (policy drop_oldest)",
			"path", o.path, "dropped", droppedSummary(st.dropped), "dropped_total", st.c.DroppedOldest)
	}
	switch {
	case rejected > 0 && !o.rejecting:
		o.rejecting = true
		o.log.Error("queue: FULL of undelivered records; new records are rejected and counted (policy reject_new); the gate keeps deciding",
			"path", o.path, "records", st.c.Rows, "bytes", st.c.Bytes, "max_records", st.cap.MaxRecords, "max_bytes", st.cap.MaxBytes,
			"rejected_total", st.c.RejectedFull)
	case rejected == 0 && o.rejecting && st.loaded && st.changed:
		o.rejecting = false
		o.log.Warn("queue: room again; records are accepted", "path", o.path, "rejected_total", st.c.RejectedFull)
	}
}

// resolveIDs returns the insertion numbers of a mark or attempt request: r.ns, plus the
// pending rows whose id is in r.ids (found through the pending index; ids are not indexed,
// the uplink marks by insertion number).
func (o *Outbox) resolveIDs(ctx context.Context, tx *sql.Tx, r *writeReq) ([]int64, error) {
	if len(r.ids) == 0 {
		return r.ns, nil
	}
	ns := append([]int64(nil), r.ns...)
	for _, id := range r.ids {
		u, err := uuid.Parse(id)
		if err != nil {
			continue // not a UUID: no record has it
		}
		rows, err := tx.QueryContext(ctx, `SELECT n FROM outbox WHERE delivered_at IS NULL AND n > 0 AND uid = ?`, u[:])
		if err != nil {
			return nil, fmt.Errorf("queue: find %s: %w", id, err)
		}
		for rows.Next() {
			var n int64
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("queue: find %s: %w", id, err)
			}
			ns = append(ns, n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("queue: find %s: %w", id, err)
		}
	}
	return ns, nil
}

// lastSeq returns the last seq of stream as seen by the current transaction; seqs holds
// what this transaction has assigned so far.
func (o *Outbox) lastSeq(ctx context.Context, tx *sql.Tx, seqs map[string]int64, stream string) (int64, error) {
	if v, ok := seqs[stream]; ok {
		return v, nil
	}
	// Read from the database once per stream and transaction rather than caching across
	// transactions: BEGIN IMMEDIATE makes this correct even if another process appends.
	var v int64
	err := tx.QueryRowContext(ctx, `SELECT last_seq FROM streams WHERE stream = ?`, stream).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		v = 0
	} else if err != nil {
		return 0, fmt.Errorf("queue: append to %s: read last seq: %w", stream, err)
	}
	return v, nil
}

// safeBuild calls build, turning a panic into an error so one bad caller cannot take the
// writer (and every other caller) down.
func safeBuild(build func(int64, string) ([]byte, error), seq int64, id string) (p []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("build panicked: %v", v)
		}
	}()
	return build(seq, id)
}

// prepared is an append made ready outside the insert loop: its seq (as it will be if every
// earlier append of the transaction is stored), id, payload and stored form.
type prepared struct {
	seq     int64
	uid     uuid.UUID
	id      string
	payload []byte
	stored  []byte
	enc     int
	err     error // the build failed; the append fails, its seq stays free
}

// prepare builds the payloads of the appends in live (on this goroutine, in order, as build
// requires) and encodes them, in parallel when there are several: compressing a record costs
// more than inserting it, and it is what bounds group commit on one core.
func (o *Outbox) prepare(ctx context.Context, tx *sql.Tx, live []*writeReq) ([]prepared, error) {
	pre := make([]prepared, len(live))
	next := map[string]int64{}
	var work []int
	for i, r := range live {
		if r.kind != opAppend {
			continue
		}
		seq, ok := next[r.stream]
		if !ok {
			last, err := o.lastSeq(ctx, tx, nil, r.stream)
			if err != nil {
				return nil, err
			}
			seq = last + 1
		}
		uid := r.uid
		if uid == (uuid.UUID{}) {
			u, err := uuid.NewRandom()
			if err != nil {
				pre[i] = prepared{seq: seq, err: fmt.Errorf("queue: append to %s: new id: %w", r.stream, err)}
				continue
			}
			uid = u
		}
		pre[i] = o.buildOne(r, seq, uid)
		if pre[i].err == nil {
			next[r.stream] = seq + 1
			work = append(work, i)
		}
	}
	encodeAll(pre, work)
	return pre, nil
}

// prepareOne builds and encodes one append with the given seq.
func (o *Outbox) prepareOne(r *writeReq, seq int64, uid uuid.UUID) prepared {
	if uid == (uuid.UUID{}) {
		u, err := uuid.NewRandom()
		if err != nil {
			return prepared{seq: seq, err: fmt.Errorf("queue: append to %s: new id: %w", r.stream, err)}
		}
		uid = u
	}
	p := o.buildOne(r, seq, uid)
	if p.err == nil {
		p.stored, p.enc = encode(p.payload, p.id)
	}
	return p
}

func (o *Outbox) buildOne(r *writeReq, seq int64, uid uuid.UUID) prepared {
	p := prepared{seq: seq, uid: uid, id: uid.String()}
	payload, err := safeBuild(r.build, seq, p.id)
	if err != nil {
		p.err = fmt.Errorf("queue: append to %s: build seq %d: %w", r.stream, seq, err)
		return p
	}
	if payload == nil {
		payload = []byte{}
	}
	p.payload = payload
	return p
}

// encodeAll encodes pre[i] for every i in work, on up to GOMAXPROCS goroutines.
func encodeAll(pre []prepared, work []int) {
	workers := min(runtime.GOMAXPROCS(0), len(work)/minPerEncoder)
	if workers <= 1 {
		for _, i := range work {
			pre[i].stored, pre[i].enc = encode(pre[i].payload, pre[i].id)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				k := int(next.Add(1)) - 1
				if k >= len(work) {
					return
				}
				i := work[k]
				pre[i].stored, pre[i].enc = encode(pre[i].payload, pre[i].id)
			}
		})
	}
	wg.Wait()
}

// minPerEncoder is how many records one more encoding goroutine must have to be worth it.
const minPerEncoder = 4
