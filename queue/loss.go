package queue

import (
	"context"
	"fmt"
	"time"
)

// Losses counted in memory first: a failed write (disk full, I/O error) cannot count itself
// on disk, and an append abandoned by its caller is counted outside the writer. They are
// saved (with the queue_loss notice they call for) by the next transaction that loads the
// counters, or by lossLoop, which retries every lossRetry, and finally by Close
// (docs/queue.md, "A full disk").

// lossRetry is how often losses counted only in memory are written again; a package
// variable so tests can shrink it.
var lossRetry = time.Second

// countAbandoned counts one append whose context ended before the writer took it.
func (o *Outbox) countAbandoned() {
	o.abandonedUnsaved.Add(1)
	o.signalLoss()
}

// signalLoss wakes lossLoop.
func (o *Outbox) signalLoss() {
	select {
	case o.lossNow <- struct{}{}:
	default:
	}
}

// unsavedLosses is how many lost records are counted only in memory.
func (o *Outbox) unsavedLosses() int64 {
	return o.failedUnsaved.Load() + o.abandonedUnsaved.Load()
}

// lossLoop saves losses counted only in memory, every lossRetry until they are on disk (and a
// queue_loss notice that was held back is written), until Close. A disk that stays
// unwritable is logged once per run of failures.
func (o *Outbox) lossLoop() {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	failing, owed := false, false
	for {
		select {
		case <-o.stop:
			return
		case <-o.lossNow:
		}
		for owed || o.unsavedLosses() > 0 {
			t.Reset(lossRetry)
			select {
			case <-o.stop:
				return
			case <-t.C:
			}
			if !owed && o.unsavedLosses() == 0 {
				break // a transaction of the writer saved them meanwhile
			}
			var err error
			owed, err = o.flushLosses()
			switch {
			case err != nil && !failing:
				failing = true
				o.log.Error("queue: the count of lost records could NOT be saved (disk full or failing?); it is kept in memory and retried",
					"path", o.path, "unsaved", o.unsavedLosses(), "retry", lossRetry, "err", err)
			case err == nil && failing:
				failing = false
				o.log.Warn("queue: the count of lost records is saved again", "path", o.path)
			}
		}
		failing = false
	}
}

// flushLosses writes the losses counted in memory and the queue_loss notice; if that
// transaction fails, it tries the counters alone (a smaller write). It reports whether a
// notice is still owed (the counters were saved without it).
func (o *Outbox) flushLosses() (owed bool, err error) {
	ctx := context.Background()
	for _, noNotice := range []bool{false, true} {
		o.lossFlushes.Add(1)
		r := &writeReq{kind: opFlush, ctx: ctx, noNotice: noNotice, done: make(chan struct{})}
		if err = o.submit(ctx, r); err != nil {
			return false, err // closed
		}
		if err = r.err; err == nil {
			return r.noticeSkipped, nil
		}
	}
	return false, err
}

// saveLossesAtClose makes a last attempt to save losses counted only in memory; what cannot
// be saved is in the log, and only there.
func (o *Outbox) saveLossesAtClose() {
	if o.unsavedLosses() == 0 {
		return
	}
	if _, err := o.flushLosses(); err != nil || o.unsavedLosses() > 0 {
		o.log.Error("queue: closing with lost records whose count could NOT be saved; this log is their only trace",
			"path", o.path, "failed_writes", o.failedUnsaved.Load(), "abandoned", o.abandonedUnsaved.Load(), "err", err)
	}
}

// quarantineRows moves the pending rows r.ns into the quarantine table, bytes untouched, and
// counts each as lost. A row already gone (delivered, dropped, quarantined) is skipped.
func (o *Outbox) quarantineRows(ctx context.Context, st *txState, r *writeReq, ts int64) error {
	for i, n := range r.ns {
		res, err := st.tx.ExecContext(ctx, `INSERT INTO quarantine (n, uid, stream, seq, topic, payload, enc, created_at, attempts, quarantined_at, reason)
			SELECT n, uid, stream, seq, topic, payload, enc, created_at, attempts, ?, ? FROM outbox WHERE n = ? AND delivered_at IS NULL`,
			ts, r.reasons[i], n)
		if err != nil {
			return fmt.Errorf("queue: quarantine: %w", err)
		}
		if k, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("queue: quarantine: %w", err)
		} else if k == 0 {
			continue
		}
		var size int64
		if err := st.tx.QueryRowContext(ctx, `DELETE FROM outbox WHERE n = ? RETURNING length(payload) + length(CAST(topic AS BLOB))`, n).Scan(&size); err != nil {
			return fmt.Errorf("queue: quarantine: %w", err)
		}
		st.c.Rows--
		st.c.Bytes -= size + rowOverhead
		st.c.Quarantined++
		st.changed = true
	}
	return nil
}
