package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
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
}

const salvageChunk = 5000

// createSalvageTarget creates the new database with the current schema.
func createSalvageTarget(ctx context.Context, dst string) (*salvageTarget, error) {
	c := &connector{rw: dsn(dst, fmt.Sprintf("_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=%d&_txlock=immediate", busyTimeout.Milliseconds()))}
	c.writable.Store(true)
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	t := &salvageTarget{path: dst, db: db}
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
	marks, gen, state, err := readMark(markPathOf(src))
	if err != nil || state == markUnreadable {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the high-water mark %s could not be read; the new one is taken from the records", markPathOf(src)))
		marks = map[string]int64{}
	}
	for s, v := range rep.Streams {
		marks[s] = max(marks[s], v)
	}
	m, err := createMark(markPathOf(t.path), gen, marks)
	if err != nil {
		return fmt.Errorf("queue: salvage to %s: %w", t.path, err)
	}
	return m.close()
}

// writeState writes the streams (each one's last seq at least the old one), the loss
// counters (rows and bytes recomputed from what was copied), the recorded gaps, and the
// records lost here as new gaps (cause unreadable), so the agent's next start reports them.
func (s *salvageSource) writeState(ctx context.Context, t *salvageTarget, rep *SalvageReport) error {
	type stream struct {
		last  int64
		topic string
	}
	old := map[string]stream{}
	err := readPast(ctx, s.rt.conn, `SELECT rowid, stream, last_seq, `+s.col("streams", "topic", "''")+` FROM streams WHERE rowid >= ? ORDER BY rowid`, nil, math.MinInt64,
		func(rows *sql.Rows) (int64, error) {
			var id, last int64
			var name, topic string
			if err := rows.Scan(&id, &name, &last, &topic); err != nil {
				return 0, err
			}
			old[name] = stream{last, topic}
			return id, nil
		}, func(lo, hi int64) {
			rep.Warnings = append(rep.Warnings, "part of the streams table could not be read: those streams' last seqs are taken from their records, and records stored without a topic get it again from the agent's next record of their stream")
		})
	if err != nil {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the streams table could not be read (%v): each stream's last seq is taken from its records", err))
	}
	for name, v := range s.maxSeq {
		if st := old[name]; v > st.last {
			old[name] = stream{v, st.topic}
		}
	}
	for name, st := range old {
		if err := t.exec(ctx, `INSERT INTO streams (stream, last_seq, topic) VALUES (?, ?, ?)`, name, st.last, st.topic); err != nil {
			return fmt.Errorf("queue: salvage to %s: %w", t.path, err)
		}
		rep.Streams[name] = st.last
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
