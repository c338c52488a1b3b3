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

	// opMark, opAttempt
	ids []string

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
	for _, r := range batch {
		if !r.state.CompareAndSwap(stateQueued, stateTaken) {
			continue // the caller gave up; it was told ctx.Err()
		}
		if err := r.ctx.Err(); err != nil && r.done != nil {
			r.finish(err)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}

	appended, err := o.runTx(live, make(map[string]int64))
	if err != nil {
		for _, r := range live {
			r.entry = Entry{}
			r.finish(err)
		}
		return
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

// runTx executes live in one transaction. Per-request failures (a build error) are stored in
// the request; a returned error fails the whole transaction.
func (o *Outbox) runTx(live []*writeReq, seqs map[string]int64) (appended bool, err error) {
	ctx := context.Background() // one caller's ctx must not abort the others' commit
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("queue: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
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
	ts := now().UnixMilli()
	for _, r := range live {
		switch r.kind {
		case opAppend:
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
			if err := prep(&upsertStream, `INSERT INTO streams (stream, last_seq) VALUES (?, ?)
				ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq`); err != nil {
				return false, err
			}
			if err := prep(&insertRow, `INSERT INTO outbox (id, stream, seq, topic, payload, created_at)
				VALUES (?, ?, ?, ?, ?, ?)`); err != nil {
				return false, err
			}
			if _, err := upsertStream.ExecContext(ctx, r.stream, seq); err != nil {
				return false, fmt.Errorf("queue: append to %s: %w", r.stream, err)
			}
			if _, err := insertRow.ExecContext(ctx, id, r.stream, seq, r.topic, payload, ts); err != nil {
				return false, fmt.Errorf("queue: append to %s: %w", r.stream, err)
			}
			seqs[r.stream] = seq
			r.entry = Entry{ID: id, Stream: r.stream, Topic: r.topic, Seq: seq, Payload: payload, CreatedAt: time.UnixMilli(ts)}
			appended = true
		case opMark:
			if err := prep(&markRow, `UPDATE outbox SET delivered_at = ?, attempts = attempts + 1
				WHERE id = ? AND delivered_at IS NULL`); err != nil {
				return false, err
			}
			for _, id := range r.ids {
				if _, err := markRow.ExecContext(ctx, ts, id); err != nil {
					return false, fmt.Errorf("queue: mark delivered: %w", err)
				}
			}
		case opAttempt:
			if err := prep(&attemptRow, `UPDATE outbox SET attempts = attempts + 1
				WHERE id = ? AND delivered_at IS NULL`); err != nil {
				return false, err
			}
			for _, id := range r.ids {
				if _, err := attemptRow.ExecContext(ctx, id); err != nil {
					return false, fmt.Errorf("queue: count attempt: %w", err)
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("queue: commit: %w", err)
	}
	return appended, nil
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
