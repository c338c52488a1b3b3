package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"

	"github.com/mattn/go-sqlite3"
)

// The new database Salvage writes.

// errTarget wraps a failure to write the new database (as opposed to a damaged source row).
type errTarget struct{ err error }

func (e errTarget) Error() string { return "write the new database: " + e.err.Error() }
func (e errTarget) Unwrap() error { return e.err }

// isConstraint reports whether err is SQLite refusing a row (NOT NULL, UNIQUE, CHECK).
func isConstraint(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint
}

// salvageTarget is the new database, written in transactions of salvageChunk statements.
type salvageTarget struct {
	path        string
	db          *sql.DB
	tx          *sql.Tx
	n           int   // statements in tx
	rows, bytes int64 // copied outbox rows and their accounted size
	// heads are the chain heads written, per stream, when they are at its last seq (for the
	// new mark).
	heads map[string][]byte
}

const salvageChunk = 5000

// createSalvageTarget creates the new database with the current schema.
func createSalvageTarget(ctx context.Context, dst string) (*salvageTarget, error) {
	c := &connector{rw: dsn(dst, fmt.Sprintf("_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=%d&_txlock=immediate", busyTimeout.Milliseconds()))}
	c.writable.Store(true)
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	t := &salvageTarget{path: dst, db: db, heads: map[string][]byte{}}
	if err := migrate(ctx, db); err != nil {
		t.discard()
		return nil, fmt.Errorf("queue: salvage to %s: create the database: %w", dst, err)
	}
	return t, nil
}

// txNow is the open transaction, begun if needed.
func (t *salvageTarget) txNow(ctx context.Context) (*sql.Tx, error) {
	if t.tx == nil {
		tx, err := t.db.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		t.tx, t.n = tx, 0
	}
	return t.tx, nil
}

// exec runs one statement in the open transaction and commits every salvageChunk.
func (t *salvageTarget) exec(ctx context.Context, q string, args ...any) error {
	tx, err := t.txNow(ctx)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return err
	}
	if t.n++; t.n >= salvageChunk {
		return t.commit()
	}
	return nil
}

func (t *salvageTarget) commit() error {
	if t.tx == nil {
		return nil
	}
	err := t.tx.Commit()
	t.tx = nil
	return err
}

// discard removes what was written: a failed salvage leaves nothing at dst.
func (t *salvageTarget) discard() {
	if t.tx != nil {
		_ = t.tx.Rollback()
	}
	_ = t.db.Close()
	for _, p := range []string{t.path, t.path + "-wal", t.path + "-shm", markPathOf(t.path)} {
		_ = os.Remove(p)
	}
}

// finish commits, checkpoints and closes the new database, and writes its high-water mark:
// the source's mark, raised to the new database's last seqs.
func (t *salvageTarget) finish(ctx context.Context, src string, rep *SalvageReport) error {
	if err := t.commit(); err != nil {
		return fmt.Errorf("queue: salvage to %s: %w", t.path, err)
	}
	if _, err := t.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("queue: salvage to %s: %w", t.path, err)
	}
	if err := t.db.Close(); err != nil {
		return fmt.Errorf("queue: salvage to %s: %w", t.path, err)
	}
	mark, err := readMark(markPathOf(src))
	if err != nil || mark.state == markUnreadable {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the high-water mark %s could not be read; the new one is taken from the records", markPathOf(src)))
		mark = markRead{seqs: map[string]int64{}, hashes: map[string][]byte{}}
	}
	for s, v := range rep.Streams {
		if v > mark.seqs[s] || (v == mark.seqs[s] && len(t.heads[s]) > 0) {
			mark.seqs[s] = v
			delete(mark.hashes, s)
			if h := t.heads[s]; len(h) > 0 {
				mark.hashes[s] = h
			}
		}
	}
	m, err := createMark(markPathOf(t.path), mark.gen, mark.seqs, mark.hashes)
	if err != nil {
		return fmt.Errorf("queue: salvage to %s: %w", t.path, err)
	}
	return m.close()
}

// writeState writes the streams of the old streams table (each one's last seq at least the
// highest seen; a name found only in a damaged row is not written), the loss
// counters (rows and bytes recomputed from what was copied), the recorded gaps, and the
// records lost here as new gaps (cause unreadable), so the agent's next start reports them.
func (s *salvageSource) writeState(ctx context.Context, t *salvageTarget, rep *SalvageReport) error {
	old := maps.Clone(s.streams)
	for name, v := range s.maxSeq {
		if st, ok := old[name]; ok && v > st.last { // never a stream the streams table lacks
			st.last = v
			old[name] = st
		}
	}
	// A chain head the streams table lost: the old mark's, when it names the same last seq.
	mark, _ := readMark(markPathOf(s.path))
	for name, st := range old {
		if len(st.chainHash) == 0 && mark.seqs[name] == st.last && len(mark.hashes[name]) > 0 {
			st.chainSeq, st.chainHash = sql.NullInt64{Int64: st.last, Valid: true}, mark.hashes[name]
		}
		if err := t.exec(ctx, `INSERT INTO streams (stream, last_seq, topic, chain_seq, chain_hash) VALUES (?, ?, ?, ?, ?)`,
			name, st.last, st.topic, st.chainSeq, st.chainHash); err != nil {
			return fmt.Errorf("queue: salvage to %s: %w", t.path, err)
		}
		rep.Streams[name] = st.last
		if len(st.chainHash) > 0 && st.chainSeq.Int64 == st.last {
			t.heads[name] = st.chainHash
		}
	}
	return s.writeCountersAndGaps(ctx, t, rep)
}

// writeCountersAndGaps copies the loss counters and the recorded gaps, and records the lost
// records.
func (s *salvageSource) writeCountersAndGaps(ctx context.Context, t *salvageTarget, rep *SalvageReport) error {
	var c counters
	if s.cols["counters"] != nil {
		var err error
		if c, err = readCounters(ctx, s.rt.conn); err != nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("the loss counters could not be read (%v): they start again from 0", err))
			c = counters{}
		}
	}
	c.Rows, c.Bytes = t.rows, t.bytes
	tx, err := t.txNow(ctx)
	if err != nil {
		return fmt.Errorf("queue: salvage to %s: %w", t.path, err)
	}
	if err := writeCounters(ctx, tx, c); err != nil {
		return fmt.Errorf("queue: salvage to %s: %w", t.path, err)
	}
	if s.cols["gaps"] != nil {
		if err := s.copyGaps(ctx, t, rep); err != nil {
			return err
		}
	}
	if len(rep.Lost) > 0 {
		if err := recordGaps(ctx, tx, rep.Lost, now().UnixMilli()); err != nil {
			return fmt.Errorf("queue: salvage to %s: %w", t.path, err)
		}
	}
	return nil
}

// copyGaps copies the gaps recorded before (schema version 5 on).
func (s *salvageSource) copyGaps(ctx context.Context, t *salvageTarget, rep *SalvageReport) error {
	var target error
	err := readPast(ctx, s.rt.conn, `SELECT g, stream, first_seq, last_seq, found_at, cause, reported FROM gaps WHERE g >= ? ORDER BY g`, nil, 0,
		func(rows *sql.Rows) (int64, error) {
			var g, first, last, found, reported int64
			var stream, cause string
			if err := rows.Scan(&g, &stream, &first, &last, &found, &cause, &reported); err != nil {
				return 0, err
			}
			if err := t.exec(ctx, `INSERT INTO gaps (stream, first_seq, last_seq, found_at, cause, reported) VALUES (?, ?, ?, ?, ?, ?)`,
				stream, first, last, found, cause, reported); err != nil {
				target = err
				return g, err
			}
			return g, nil
		}, func(lo, hi int64) {
			rep.Warnings = append(rep.Warnings, "part of the table of recorded gaps could not be read: gaps already reported upstream may be missing from it")
		})
	if target != nil {
		return fmt.Errorf("queue: salvage to %s: %w", t.path, target)
	}
	if err != nil {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the table of recorded gaps could not be read (%v)", err))
	}
	return nil
}
