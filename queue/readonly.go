package queue

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
)

// Reader looks at an outbox file read-only, for `sentinel queue stats`, `sentinel queue ids`
// and `sentinel report calls` while the daemon runs in another process: it never writes,
// never migrates and never takes the writer's lock; SQLite's WAL lets it read a consistent
// snapshot while the daemon commits. In the daemon's own process, OpenReader shares the open
// Outbox's pool instead of opening the file again (registry.go).
type Reader struct {
	path   string
	db     *sql.DB
	shared *Outbox // the Outbox of this process whose pool the Reader uses; nil: its own
}

// OpenReader opens the outbox at path read-only. A missing file, a foreign or corrupt file,
// or one from a newer version is an error naming the file; the file is never modified, and
// it is only ever opened through SQLite. When an Outbox of this process holds path, the
// Reader reads through that Outbox's pool (and Close leaves it open).
func OpenReader(path string) (*Reader, error) {
	if o := holder(path); o != nil {
		switch {
		case !o.opened.Load():
			return nil, fmt.Errorf("queue: %s is being opened by this process; read it once Open returned: %w", path, ErrInUse)
		case o.isClosed():
			return nil, ErrClosed
		}
		return &Reader{path: path, db: o.db, shared: o}, nil
	}
	switch state, err := inspectPath(path, false); {
	case err != nil:
		return nil, err
	case state == fileMissing:
		return nil, fmt.Errorf("queue: %s does not exist (the agent creates it at its first start; check queue.path): %w", path, os.ErrNotExist)
	case state == fileEmpty:
		return nil, fmt.Errorf("queue: %s is empty (the agent has not initialised it yet): %w", path, ErrInvalid)
	}
	db := sql.OpenDB(&connector{ro: readOnlyDSN(path)})
	db.SetMaxOpenConns(1)
	if _, err := inspectDB(context.Background(), db, path); err != nil {
		_ = db.Close()
		return nil, err
	}
	return &Reader{path: path, db: db}, nil
}

// Close closes the reader (a shared pool stays open: its Outbox closes it).
func (r *Reader) Close() error {
	if r.shared != nil {
		return nil
	}
	return r.db.Close()
}

// Stats returns the same snapshot as Outbox.Stats, except losses the daemon could not save
// yet (the disk is still full): those are in its log and its own status.
func (r *Reader) Stats(ctx context.Context) (Stats, error) {
	s, err := readStats(ctx, r.db, r.path)
	if err != nil {
		if strings.Contains(err.Error(), "no such table: counters") {
			return Stats{}, fmt.Errorf("queue: %s has schema version 1; start the agent once to migrate it", r.path)
		}
		return Stats{}, fileError(r.path, err)
	}
	return s, nil
}

// IDs calls f with the id of every retained record (pending and delivered), in insertion
// order, until f returns an error.
func (r *Reader) IDs(ctx context.Context, f func(id string) error) error {
	rows, err := r.db.QueryContext(ctx, `SELECT id FROM outbox ORDER BY n`)
	if err != nil {
		return fileError(r.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fileError(r.path, err)
		}
		if err := f(id); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fileError(r.path, err)
	}
	return nil
}

// Entries calls f with every retained record (pending and delivered; payloads decoded), in
// insertion order, until f returns an error. A damaged row does not stop it: every readable
// record is given to f, and then Entries returns an error wrapping ErrCorrupt that counts the
// damaged ones. ScanEntries gives the count without an error.
func (r *Reader) Entries(ctx context.Context, f func(Entry) error) error {
	res, err := r.ScanEntries(ctx, ScanOptions{}, f)
	if err != nil {
		return err
	}
	if res.Damaged > 0 {
		return fmt.Errorf("queue: %s: %d damaged rows skipped (first: %w)", r.path, res.Damaged, res.FirstDamage)
	}
	return nil
}

// ScanEntries is Outbox.ScanEntries for a Reader: every retained record, in one snapshot,
// damaged rows skipped and counted.
func (r *Reader) ScanEntries(ctx context.Context, opts ScanOptions, f func(Entry) error) (ScanResult, error) {
	if r.shared != nil {
		return r.shared.ScanEntries(ctx, opts, f)
	}
	return scanEntries(ctx, r.db, r.path, opts, f)
}

// QuickCheck runs the check Open runs on an existing file before it starts (PRAGMA
// quick_check: every page and row; here without a budget: about 1–2 s per 1,000,000 records)
// and returns nil when the file is sound, otherwise the error Open refuses it with: ErrCorrupt,
// with what to do (salvage).
func (r *Reader) QuickCheck(ctx context.Context) error {
	return quickCheck(ctx, r.db, r.path, noCheckBudget)
}

// IntegrityCheck runs PRAGMA integrity_check and returns nil when SQLite answers "ok".
func (r *Reader) IntegrityCheck(ctx context.Context) error {
	rows, err := r.db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return fileError(r.path, err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return fileError(r.path, err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return fileError(r.path, err)
	}
	if len(msgs) == 1 && msgs[0] == "ok" {
		return nil
	}
	return fmt.Errorf("queue: %s: integrity_check: %s: %w", r.path, strings.Join(msgs, "; "), ErrCorrupt)
}
