package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
	id            string // chosen by the caller; empty for a new UUID
	build         func(seq int64, id string) ([]byte, error)
	entry         Entry

	// opMark, opAttempt: by id (ids) or by insertion number (ns)
	ids []string
	ns  []int64

	// opPurge
	purged int64

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
func (o *Outbox) writer() {
	defer close(o.done)
	batch := make([]*writeReq, 0, maxBatch)
	for first := range o.reqs {
		batch = append(batch[:0], first)
	drain:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-o.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		o.commit(batch)
		clear(batch)
	}
}

// commit runs batch in one transaction and completes every request in it.
func (o *Outbox) commit(batch []*writeReq) {
	live := batch[:0:0]
	appends := 0
	for _, r := range batch {
		if !r.state.CompareAndSwap(stateQueued, stateTaken) {
			continue // the caller gave up; it was told ctx.Err()
		}
		if err := r.ctx.Err(); err != nil && r.done != nil {
			r.finish(err)
			continue
		}
		live = append(live, r)
		if r.kind == opAppend {
			appends++
		}
	}
	if len(live) == 0 {
		return
	}

	appended, err := o.runTx(live, make(map[string]int64))
	if err != nil {
		if appends > 0 {
			// A failed write (disk full, I/O error): the records are lost for good. Count
			// them; the count is saved with the next transaction that succeeds.
			n := o.failedUnsaved.Add(int64(appends))
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
	if o.failing && appends > 0 {
		o.failing = false
		o.log.Warn("queue: writes succeed again", "path", o.path)
	}
	o.txCount.Add(1)
	if appended { // before finishing, so Changed has fired by the time Append returns
		select {
		case o.changed <- struct{}{}:
		default:
		}
	}
	for _, r := range live {
		r.finish(nil)
	}
}

// runTx executes live in one transaction. Per-request failures (a build error, a full
// outbox) are stored in the request; a returned error fails the whole transaction.
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
	var (
		upsertStream, insertRow, markRow, attemptRow *sql.Stmt
		prep                                         = func(s **sql.Stmt, q string) error {
			if *s != nil {
				return nil
			}
			st, err := tx.PrepareContext(ctx, q)
			if err != nil {
				return fmt.Errorf("queue: prepare: %w", err)
			}
			*s = st
			return nil
		}
	)
	st := &txState{tx: tx, cap: o.capacityNow()}
	failedUnsaved := o.failedUnsaved.Load()
	rejected := 0
	ts := now().UnixMilli()

	// storedTopic is what the row holds: "" when topic is its stream's topic (the first
	// topic the stream was appended with).
	storedTopic := func(stream, topic string) (string, error) {
		canon, ok := o.topics[stream]
		if !ok {
			err := tx.QueryRowContext(ctx, `SELECT topic FROM streams WHERE stream = ?`, stream).Scan(&canon)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return "", fmt.Errorf("queue: append to %s: read topic: %w", stream, err)
			}
			if canon == "" {
				canon = topic // the upsert below makes it the stream's topic
			}
			o.topics[stream] = canon
		}
		if topic == canon {
			return "", nil
		}
		return topic, nil
	}
	insert := func(stream, topic, id string, seq int64, payload []byte) error {
		stored, enc := encode(payload)
		rowTopic, err := storedTopic(stream, topic)
		if err != nil {
			return err
		}
		if err := prep(&upsertStream, `INSERT INTO streams (stream, last_seq, topic) VALUES (?, ?, ?)
			ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq,
				topic = CASE WHEN streams.topic = '' THEN excluded.topic ELSE streams.topic END`); err != nil {
			return err
		}
		if err := prep(&insertRow, `INSERT INTO outbox (id, stream, seq, topic, payload, enc, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`); err != nil {
			return err
		}
		if _, err := upsertStream.ExecContext(ctx, stream, seq, topic); err != nil {
			return fmt.Errorf("queue: append to %s: %w", stream, err)
		}
		if _, err := insertRow.ExecContext(ctx, id, stream, seq, rowTopic, stored, enc, ts); err != nil {
			return fmt.Errorf("queue: append to %s: %w", stream, err)
		}
		seqs[stream] = seq
		st.c.Rows++
		st.c.Bytes += rowSize(len(stored), len(rowTopic))
		st.changed = true
		return nil
	}

	for _, r := range live {
		switch r.kind {
		case opAppend:
			if err := st.load(ctx); err != nil {
				return false, err
			}
			last, err := o.lastSeq(ctx, tx, seqs, r.stream)
			if err != nil {
				return false, err
			}
			seq := last + 1
			id := r.id
			if id == "" {
				u, err := uuid.NewRandom()
				if err != nil {
					r.err = fmt.Errorf("queue: append to %s: new id: %w", r.stream, err)
					continue
				}
				id = u.String()
			}
			payload, err := safeBuild(r.build, seq, id)
			if err != nil {
				r.err = fmt.Errorf("queue: append to %s: build seq %d: %w", r.stream, seq, err)
				continue
			}
			if payload == nil {
				payload = []byte{}
			}
			if st.capped() {
				stored, _ := encode(payload) // sized as stored; encoding again below is cheap
				rowTopic, err := storedTopic(r.stream, r.topic)
				if err != nil {
					return false, err
				}
				fits, err := st.makeRoom(ctx, rowSize(len(stored), len(rowTopic)))
				if err != nil {
					return false, err
				}
				if !fits {
					rejected++
					st.c.RejectedFull++
					st.changed = true
					r.err = fmt.Errorf("queue: append to %s: %d records, %d bytes stored (limits %d records, %d bytes), all undelivered: %w",
						r.stream, st.c.Rows, st.c.Bytes, st.cap.MaxRecords, st.cap.MaxBytes, ErrFull)
					continue
				}
			}
			if err := insert(r.stream, r.topic, id, seq, payload); err != nil {
				return false, err
			}
			r.entry = Entry{ID: id, Stream: r.stream, Topic: r.topic, Seq: seq, Payload: payload, CreatedAt: time.UnixMilli(ts)}
			appended = true
		case opMark:
			if err := prep(&markRow, `UPDATE outbox SET delivered_at = ?, attempts = attempts + 1
				WHERE n = ? AND delivered_at IS NULL`); err != nil {
				return false, err
			}
			ns, err := o.resolveIDs(ctx, tx, r)
			if err != nil {
				return false, err
			}
			for _, n := range ns {
				if _, err := markRow.ExecContext(ctx, ts, n); err != nil {
					return false, fmt.Errorf("queue: mark delivered: %w", err)
				}
			}
		case opAttempt:
			if err := prep(&attemptRow, `UPDATE outbox SET attempts = attempts + 1
				WHERE n = ? AND delivered_at IS NULL`); err != nil {
				return false, err
			}
			ns, err := o.resolveIDs(ctx, tx, r)
			if err != nil {
				return false, err
			}
			for _, n := range ns {
				if _, err := attemptRow.ExecContext(ctx, n); err != nil {
					return false, fmt.Errorf("queue: count attempt: %w", err)
				}
			}
		case opPurge:
			if err := st.load(ctx); err != nil {
				return false, err
			}
			cutoff := ts - st.cap.Retention.Milliseconds()
			n, err := st.deleteRows(ctx, `DELETE FROM outbox WHERE n IN (SELECT n FROM outbox INDEXED BY outbox_delivered
				WHERE delivered_at IS NOT NULL AND delivered_at <= ? ORDER BY delivered_at LIMIT ?)`+returningSize, cutoff, purgeChunk)
			if err != nil {
				return false, fmt.Errorf("queue: purge delivered records: %w", err)
			}
			r.purged = n
			o.purges.Add(1)
		}
	}

	if st.loaded && failedUnsaved > 0 {
		st.c.FailedWrites += failedUnsaved
		st.changed = true
	}
	// Report losses upstream as soon as there is room for the notice.
	if st.loaded && st.cap.NoticeTopic != "" && st.c.lost() > st.c.Reported {
		last, err := o.lastSeq(ctx, tx, seqs, NoticeStream)
		if err != nil {
			return false, err
		}
		id := uuid.NewString()
		payload, err := noticePayload(last+1, id, time.UnixMilli(ts), st.c)
		if err != nil {
			return false, fmt.Errorf("queue: notice: %w", err)
		}
		stored, _ := encode(payload)
		if fits, err := st.makeRoom(ctx, rowSize(len(stored), len(st.cap.NoticeTopic))); err != nil {
			return false, err
		} else if fits {
			if err := insert(NoticeStream, st.cap.NoticeTopic, id, last+1, payload); err != nil {
				return false, err
			}
			st.c.Reported = st.c.lost()
			appended = true
		}
	}
	if st.changed {
		if err := writeCounters(ctx, tx, st.c); err != nil {
			return false, err
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("queue: commit: %w", err)
	}
	if failedUnsaved > 0 && st.loaded {
		o.failedUnsaved.Add(-failedUnsaved)
	}
	o.logCapacity(st, rejected)
	return appended, nil
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
		rows, err := tx.QueryContext(ctx, `SELECT n FROM outbox WHERE delivered_at IS NULL AND n > 0 AND id = ?`, id)
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
