package queue

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/mattn/go-sqlite3"
)

// Reading every retained entry, past damage: a row whose id or payload cannot be decoded is
// skipped and counted, and so is a stretch of the table SQLite cannot read (a damaged page),
// so that one bad row never hides the rows behind it.

// ScanOptions configure ScanEntries.
type ScanOptions struct {
	// Snapshot, when set, is called once the scan's read transaction holds its snapshot and
	// before the first entry is given to f: records committed after that call are not in the
	// scan. It is called (once) even when the scan fails before, so nobody waits for ever.
	Snapshot func()
}

// ScanResult is what a scan saw.
type ScanResult struct {
	// Entries counts the entries given to f.
	Entries int64
	// Damaged counts what the scan skipped: rows whose id or payload cannot be decoded, and
	// stretches of the table SQLite could not read (each counted once; one may have held
	// several rows).
	Damaged int64
	// FirstDamage says where and why the first damage was skipped (the row's stream, seq and
	// insertion number, never its payload), for a log line; nil when Damaged is 0. It wraps
	// ErrCorrupt.
	FirstDamage error
}

func (r *ScanResult) damaged(err error) {
	r.Damaged++
	if r.FirstDamage == nil {
		r.FirstDamage = err
	}
}

// ScanEntries calls f with every retained record (pending and delivered; payloads decoded)
// in insertion order, all read in one snapshot of the database, until f returns an error
// (returned as is). It reads through the Outbox's own pool: in the process that holds the
// outbox, use it (or OpenReader, which shares the pool) and never open the file again.
// Damaged rows are skipped and counted in the result, not returned as an error.
func (o *Outbox) ScanEntries(ctx context.Context, opts ScanOptions, f func(Entry) error) (ScanResult, error) {
	if o.isClosed() {
		if opts.Snapshot != nil {
			opts.Snapshot()
		}
		return ScanResult{}, ErrClosed
	}
	res, err := scanEntries(ctx, o.db, o.path, opts, f)
	if err != nil && o.isClosed() {
		return res, ErrClosed
	}
	return res, err
}

const entriesSQL = `SELECT o.n, o.uid, o.stream, o.seq,
		CASE WHEN o.topic = '' THEN COALESCE(s.topic, '') ELSE o.topic END, o.payload, o.enc, o.created_at, o.delivered_at
	FROM outbox o LEFT JOIN streams s ON s.stream = o.stream WHERE o.n >= ? ORDER BY o.n`

func scanEntries(ctx context.Context, db *sql.DB, path string, opts ScanOptions, f func(Entry) error) (res ScanResult, err error) {
	snapshot := func() {
		if opts.Snapshot != nil {
			opts.Snapshot()
			opts.Snapshot = nil
		}
	}
	defer snapshot()
	rt, err := beginRead(ctx, db)
	if err != nil {
		return res, fileError(path, err)
	}
	defer rt.end()
	snapshot()
	var stop error // f's error
	err = readPast(ctx, rt.conn, entriesSQL, nil, 1, func(rows *sql.Rows) (int64, error) {
		e, bad, err := scanEntryRow(rows)
		if err != nil {
			return 0, err
		}
		if bad != nil {
			res.damaged(fmt.Errorf("queue: %s: stored record n=%d (%s seq %d) skipped: %w", path, e.n, e.Stream, e.Seq, bad))
			return e.n, nil
		}
		res.Entries++
		if stop = f(e); stop != nil {
			return e.n, stop
		}
		return e.n, nil
	}, func(lo, hi int64) {
		res.damaged(fmt.Errorf("queue: %s: stored records n=%s could not be read: %w", path, keyRange(lo, hi), ErrCorrupt))
	})
	switch {
	case stop != nil && errors.Is(err, stop):
		return res, stop
	case err != nil:
		return res, fileError(path, err)
	}
	return res, nil
}

// scanEntryRow reads one row of entriesSQL. bad is why the row cannot be given out (its id,
// stream, seq or payload damaged); err is a read error. e.n is set whenever err is nil.
func scanEntryRow(rows *sql.Rows) (e Entry, bad, err error) {
	var uid []byte
	var stream, topic sql.NullString
	var seq, enc, created, delivered sql.NullInt64
	if err := rows.Scan(&e.n, &uid, &stream, &seq, &topic, &e.Payload, &enc, &created, &delivered); err != nil {
		if e.n != 0 {
			return e, fmt.Errorf("a column has the wrong type (%v): %w", err, ErrCorrupt), nil
		}
		return e, nil, err
	}
	e.Stream, e.Seq, e.Topic = stream.String, seq.Int64, topic.String
	u, err := uuid.FromBytes(uid)
	switch {
	case err != nil:
		return e, fmt.Errorf("id: %w: %w", err, ErrCorrupt), nil
	case !stream.Valid || !seq.Valid || seq.Int64 <= 0 || !enc.Valid || !created.Valid:
		return e, fmt.Errorf("stream, seq, encoding or time missing: %w", ErrCorrupt), nil
	}
	e.ID = u.String()
	if e.Payload, err = decode(e.Payload, int(enc.Int64), e.ID); err != nil {
		return e, err, nil
	}
	e.CreatedAt = time.UnixMilli(created.Int64)
	if delivered.Valid {
		e.DeliveredAt = time.UnixMilli(delivered.Int64)
	}
	return e, nil, nil
}

// keyRange renders a stretch of keys; hi math.MaxInt64 means "to the end".
func keyRange(lo, hi int64) string {
	switch {
	case hi == math.MaxInt64:
		return fmt.Sprintf("%d and after", lo)
	case lo == hi:
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}

// readTx is a read transaction on one connection: every query in it sees one snapshot.
type readTx struct{ conn *sql.Conn }

// beginRead starts a read transaction and takes its snapshot (the first read does).
func beginRead(ctx context.Context, db *sql.DB) (*readTx, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	rt := &readTx{conn: conn}
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil { // DEFERRED, whatever the pool's _txlock
		_ = conn.Close()
		return nil, err
	}
	var v int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		rt.end()
		return nil, err
	}
	return rt, nil
}

// end ends the transaction; a connection that cannot end it is discarded, never pooled.
func (t *readTx) end() {
	if _, err := t.conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		_ = t.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	_ = t.conn.Close()
}

// isCorrupt reports whether err is SQLite saying the file is damaged.
func isCorrupt(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrCorrupt || se.Code == sqlite3.ErrNotADB)
}

// readPast reads the rows of q (an ordered query on an integer key whose last parameter is
// the first key to read: "key >= ? ORDER BY key"; args are the others) from key from on,
// calling row for each; row
// returns the row's key. When SQLite finds the table damaged part-way (SQLITE_CORRUPT), it
// looks for the next key the table can be read from again (probeReadable), reports the
// stretch it skips to skipped and goes on. Any other error, and row's, ends it.
func readPast(ctx context.Context, c rowQuerier, q string, args []any, from int64, row func(*sql.Rows) (int64, error), skipped func(lo, hi int64)) error {
	at := func(k int64) []any { return append(append([]any(nil), args...), k) }
	next := from
	for {
		last, read, err := readRows(ctx, c, q, at(next), row)
		if err == nil {
			return nil
		}
		if !isCorrupt(err) {
			return err
		}
		lo := next
		if read {
			lo = last + 1
		}
		resume, ok, err := probeReadable(ctx, c, q, at, lo)
		if err != nil {
			return err
		}
		if !ok {
			skipped(lo, math.MaxInt64)
			return nil
		}
		if resume > lo {
			skipped(lo, resume-1)
		}
		next = resume
	}
}

// readRows runs q with args; last is the key of the last row read (read: any was).
func readRows(ctx context.Context, c rowQuerier, q string, args []any, row func(*sql.Rows) (int64, error)) (last int64, read bool, err error) {
	rows, err := c.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	for rows.Next() {
		k, err := row(rows)
		if err != nil {
			return last, read, err
		}
		last, read = k, true
	}
	return last, read, rows.Err()
}

// probeReadable finds the smallest key k >= lo from which q reads its first row without
// SQLITE_CORRUPT (the first row is read whole: it is where the scan resumes), by doubling
// steps and then bisecting. ok is false when no such key exists (the damage reaches the
// end). Two damaged stretches close together may be skipped as one.
func probeReadable(ctx context.Context, c rowQuerier, q string, at func(int64) []any, lo int64) (k int64, ok bool, err error) {
	try := func(k int64) (bool, error) {
		rows, err := c.QueryContext(ctx, q+" LIMIT 1", at(k)...)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
		}
		if err != nil && !isCorrupt(err) {
			return false, err
		}
		return err == nil, nil
	}
	if good, err := try(lo); err != nil || good {
		return lo, good, err
	}
	bad, step := lo, int64(1)
	for {
		if bad > math.MaxInt64-step {
			return 0, false, nil
		}
		k = bad + step
		good, err := try(k)
		if err != nil {
			return 0, false, err
		}
		if good {
			break
		}
		bad, step = k, step*2
	}
	for bad+1 < k { // try(bad) fails, try(k) reads
		mid := bad + (k-bad)/2
		good, err := try(mid)
		if err != nil {
			return 0, false, err
		}
		if good {
			k = mid
		} else {
			bad = mid
		}
	}
	return k, true, nil
}
