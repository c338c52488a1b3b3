package queue

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sort"
	"time"
)

// The steps of Open, in the order they run: look at the path (a stat), read the high-water
// mark, check the file read-only through the Outbox's own pool, switch the pool to
// read-write, migrate, compare the database with the mark, write the mark.

// open runs Open's steps on o. late reports that the start-up check ran out of budget and
// must finish in the background (checkLate).
func (o *Outbox) open(syncMode string, opts Options) (late bool, err error) {
	state, err := inspectPath(o.path, true)
	if err != nil {
		return false, err
	}
	markPath := markPathOf(o.path)
	mark, err := readMark(markPath)
	if err != nil {
		return false, err
	}
	c := &connector{ro: readOnlyDSN(o.path), rw: readWriteDSN(o.path, syncMode)}
	db := sql.OpenDB(c)
	fail := func(err error) (bool, error) {
		if o.qc != nil { // a start-up check still running on the pool
			o.qc.cancel()
			<-o.qc.done
			o.qc = nil
		}
		if o.mark != nil {
			_ = o.mark.close()
			o.mark = nil
		}
		_ = db.Close()
		return false, err
	}
	ctx := context.Background()
	budget := opts.CheckBudget
	if budget == 0 {
		budget = DefaultCheckBudget
	}
	if late, err = o.checkFile(ctx, db, state, budget); err != nil {
		return fail(err)
	}
	c.writable.Store(true) // from here on the pool writes
	db.SetMaxIdleConns(4)
	o.db = db
	if err := migrate(ctx, db); err != nil {
		return fail(fileError(o.path, err))
	}
	merged, hashes, err := o.reconcile(ctx, mark, state)
	if err != nil {
		return fail(fileError(o.path, err))
	}
	if !opts.noMark {
		if o.mark, err = createMark(markPath, mark.gen, merged, hashes); err != nil {
			return fail(err)
		}
		o.mark.noSync = opts.noMarkSync
	}
	if o.wc, err = db.Conn(ctx); err != nil {
		return fail(fileError(o.path, err))
	}
	o.wtx = &writerTx{conn: o.wc, stmts: map[string]*sql.Stmt{}}
	return late, nil
}

// checkFile runs the start-up checks while the pool is still read-only, on connections that
// are closed afterwards: the file is ours (or an empty SQLite database), not from a newer
// version, and its pages are sound: quick_check within budget (a negative budget skips it).
// When the budget runs out, every page is read instead (walkTrees) while quick_check goes
// on; late reports that Open starts and checkLate waits for quick_check in the background.
func (o *Outbox) checkFile(ctx context.Context, db *sql.DB, state fileState, budget time.Duration) (late bool, err error) {
	if state != filePresent {
		return false, nil // nothing to check: Open creates it
	}
	db.SetMaxIdleConns(0) // read-only connections close when released
	conn, err := db.Conn(ctx)
	if err != nil {
		return false, fileError(o.path, err)
	}
	defer conn.Close()
	empty, err := inspectDB(ctx, conn, o.path)
	if err != nil || empty || budget < 0 {
		return false, err
	}
	qc, err := o.startQuickCheck(ctx, db)
	if err != nil {
		return false, err
	}
	// Meanwhile, read every page (a fraction of quick_check's cost): it decides when
	// quick_check runs out of budget on a large database.
	wctx, stopWalk := context.WithCancel(ctx)
	defer stopWalk()
	walked := make(chan error, 1)
	go func() { walked <- walkTrees(wctx, conn, o.path) }()
	timer := time.NewTimer(budget)
	defer timer.Stop()
	select {
	case <-qc.done:
		if qc.err != nil {
			stopWalk()
		}
		werr := <-walked
		o.log.Debug("queue: start-up check done", "path", o.path, "took", time.Since(qc.start), "err", qc.err)
		if qc.err != nil {
			return false, qc.err
		}
		return false, werr
	case <-timer.C:
	}
	if err := <-walked; err != nil {
		qc.cancel()
		<-qc.done
		return false, err
	}
	select {
	case <-qc.done:
		return false, qc.err
	default:
	}
	o.qc = qc
	o.log.Warn("queue: the start-up check (quick_check) did not finish within its budget; every page was read and is sound, the queue starts and quick_check goes on in the background",
		"path", o.path, "budget", budget, "took", time.Since(qc.start))
	return true, nil
}

// noCheckBudget is the budget of a quick_check that runs to its end (in the background, or
// for `sentinel queue stats`).
const noCheckBudget = 24 * time.Hour

// quickChecking is a quick_check running on its own read-only connection.
type quickChecking struct {
	start  time.Time
	done   chan struct{} // closed when it ended; err is then its result
	err    error
	cancel context.CancelFunc
}

// startQuickCheck starts quick_check on a connection of its own, discarded when it ends (a
// read-only connection must never be pooled with the read-write ones).
func (o *Outbox) startQuickCheck(ctx context.Context, db *sql.DB) (*quickChecking, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fileError(o.path, err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	qc := &quickChecking{start: time.Now(), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(qc.done)
		defer cancel()
		qc.err = quickCheck(cctx, conn, o.path, noCheckBudget)
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		_ = conn.Close()
	}()
	return qc, nil
}

// checkLate waits for a start-up quick_check that ran out of budget (its read-only
// connection reads the file as it was found, while the outbox writes). Damage found is
// logged at ERROR with what to do; the outbox goes on meanwhile (refusing records would lose
// them: the gate decides anyway). Close interrupts it.
func (o *Outbox) checkLate() {
	select {
	case <-o.qc.done:
	case <-o.stop:
		o.qc.cancel()
		<-o.qc.done
		o.log.Warn("queue: the background start-up check was cut short by the stop; the next start checks again", "path", o.path)
		return
	}
	if o.qc.err != nil {
		o.log.Error("queue: the background start-up check found the database DAMAGED; records may not be read back (stop the agent and salvage it)",
			"path", o.path, "err", o.qc.err)
		return
	}
	o.log.Info("queue: the background start-up check is ok", "path", o.path, "took", time.Since(o.qc.start))
}

// SeqRange is a stretch of a stream's seqs, first to last inclusive: records lost, as a
// queue_loss notice names them (missing_ranges) and as Salvage reports them.
type SeqRange struct {
	Stream string `json:"stream"`
	First  int64  `json:"first_seq"`
	Last   int64  `json:"last_seq"`
	// Cause is why the records are missing: behind_mark (the database lost them: a damaged
	// WAL, an emptied or replaced file) or unreadable (salvage could not read them).
	Cause string `json:"cause"`
}

const (
	causeBehindMark = "behind_mark"
	causeUnreadable = "unreadable"
)

// reconcile compares the database with the high-water mark read at Open: every stream whose
// last seq is below its mark lost the records in between. They are recorded as gaps, counted
// (counters.missing, so the next queue_loss notice reports them), the stream continues after
// the mark (its chain from the hash the mark holds for it: the next record links to the last
// one stored before the loss), and each gap is logged at ERROR. It returns the mark to write:
// the higher of the two per stream, with the hash of the record at it where known.
func (o *Outbox) reconcile(ctx context.Context, mark markRead, state fileState) (map[string]int64, map[string][]byte, error) {
	switch {
	case mark.state == markUnreadable:
		o.log.Warn("queue: the high-water mark file is damaged; it is written again from the database (a loss before this start cannot be detected)",
			"mark", markPathOf(o.path))
	case mark.state == markAbsent && state == fileEmpty:
		o.log.Warn("queue: the database file was empty (0 bytes) and there is no high-water mark to compare it with; a new queue is initialised",
			"path", o.path)
	}
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = tx.Rollback() }()
	have, err := readStreamPos(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	merged, hashes := map[string]int64{}, map[string][]byte{}
	for s, p := range have {
		merged[s] = p.last
		if p.chained() && p.chainSeq == p.last {
			hashes[s] = p.chainHash
		}
	}
	var gaps []SeqRange
	for s, m := range mark.seqs {
		if m > have[s].last {
			gaps = append(gaps, SeqRange{Stream: s, First: have[s].last + 1, Last: m, Cause: causeBehindMark})
			merged[s] = m
			delete(hashes, s)
			if h := mark.hashes[s]; len(h) > 0 {
				hashes[s] = h
			}
		}
	}
	if len(gaps) == 0 {
		return merged, hashes, nil
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i].Stream < gaps[j].Stream })
	if err := recordGaps(ctx, tx, gaps, now().UnixMilli()); err != nil {
		return nil, nil, err
	}
	if err := continueChains(ctx, tx, gaps, mark.hashes); err != nil {
		return nil, nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, nil, err
	}
	for _, g := range gaps {
		o.log.Error("queue: the database is behind its high-water mark: records were LOST (a damaged WAL, or the file was emptied or replaced); their seqs are not used again and a queue_loss notice reports them",
			"path", o.path, "stream", g.Stream, "first_seq", g.First, "last_seq", g.Last, "lost", g.Last-g.First+1, "mark", markPathOf(o.path))
	}
	return merged, hashes, nil
}

// continueChains sets the chain head of each stream that lost records behind the mark to the
// hash the mark holds for its last seq (the last record stored before the loss), so that the
// next record links to it. A mark without a hash for the stream (written before the chain,
// or by an unchained outbox) leaves the database's head as it is.
func continueChains(ctx context.Context, tx sqlTx, gaps []SeqRange, hashes map[string][]byte) error {
	for _, g := range gaps {
		h := hashes[g.Stream]
		if len(h) == 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE streams SET chain_seq = ?, chain_hash = ? WHERE stream = ?`, g.Last, h, g.Stream); err != nil {
			return fmt.Errorf("queue: record lost seqs: %w", err)
		}
	}
	return nil
}

// streamPos is where a stream stands: its last seq, and its chain head (the seq and hash of
// its last chained record; chainHash nil before its first).
type streamPos struct {
	last      int64
	chainSeq  int64
	chainHash []byte
}

func (p streamPos) chained() bool { return len(p.chainHash) > 0 }

// readStreamPos reads every stream's position.
func readStreamPos(ctx context.Context, q queryer) (map[string]streamPos, error) {
	rows, err := q.QueryContext(ctx, `SELECT stream, last_seq, chain_seq, chain_hash FROM streams`)
	if err != nil {
		return nil, fmt.Errorf("queue: read streams: %w", err)
	}
	defer rows.Close()
	m := map[string]streamPos{}
	for rows.Next() {
		var s string
		var p streamPos
		var cs sql.NullInt64
		if err := rows.Scan(&s, &p.last, &cs, &p.chainHash); err != nil {
			return nil, fmt.Errorf("queue: read streams: %w", err)
		}
		p.chainSeq = cs.Int64
		m[s] = p
	}
	return m, rows.Err()
}

// recordGaps stores gaps (to be named by the next queue_loss notice), counts their records as
// missing and raises each stream's last seq to the gap's end, so those seqs are never used
// again.
func recordGaps(ctx context.Context, tx sqlTx, gaps []SeqRange, ts int64) error {
	var n int64
	for _, g := range gaps {
		if _, err := tx.ExecContext(ctx, `INSERT INTO streams (stream, last_seq, topic) VALUES (?, ?, '')
			ON CONFLICT (stream) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)`, g.Stream, g.Last); err != nil {
			return fmt.Errorf("queue: record lost seqs: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO gaps (stream, first_seq, last_seq, found_at, cause) VALUES (?, ?, ?, ?, ?)`,
			g.Stream, g.First, g.Last, ts, g.Cause); err != nil {
			return fmt.Errorf("queue: record lost seqs: %w", err)
		}
		n += g.Last - g.First + 1
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO counters (name, value) VALUES ('missing', ?)
		ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`, n); err != nil {
		return fmt.Errorf("queue: record lost seqs: %w", err)
	}
	return nil
}

// advanceMark raises the high-water mark to the seqs a commit just used (writer goroutine).
// A mark that cannot be written is logged once per run of failures; records are stored
// regardless (the mark then lags: a later loss could go unnoticed, never a false one).
func (o *Outbox) advanceMark(seqs map[string]int64, hashes map[string][]byte) {
	if o.mark == nil || len(seqs) == 0 {
		return
	}
	err := o.mark.advance(seqs, hashes)
	switch {
	case err != nil && !o.markFailing:
		o.markFailing = true
		o.log.Error("queue: the high-water mark could NOT be written; records are stored, but a later loss of them could go unnoticed",
			"mark", o.mark.path, "err", err)
	case err == nil && o.markFailing:
		o.markFailing = false
		o.log.Warn("queue: the high-water mark is written again", "mark", o.mark.path)
	}
}

// markLoop flushes the high-water mark to disk every interval while it changes, until Close
// (which flushes it a last time).
func (o *Outbox) markLoop(every time.Duration) {
	if o.mark == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
		}
		err := o.mark.sync()
		switch {
		case err != nil && !failing:
			failing = true
			o.log.Warn("queue: the high-water mark could not be flushed to disk; retried", "mark", o.mark.path, "err", err)
		case err == nil && failing:
			failing = false
		}
	}
}
