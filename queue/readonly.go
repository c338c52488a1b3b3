package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Reader looks at an outbox file read-only, for `sentinel queue stats` and `sentinel queue
// ids` while the daemon runs: it never writes, never migrates and never takes the writer's
// lock; SQLite's WAL lets it read a consistent snapshot while the daemon commits.
type Reader struct {
	path string
	db   *sql.DB
}

// OpenReader opens the outbox at path read-only. A missing file, a foreign or corrupt file,
// or one from a newer version is an error naming the file; the file is never modified.
func OpenReader(path string) (*Reader, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("queue: %s does not exist (the agent creates it at its first start; check queue.path): %w", path, os.ErrNotExist)
	case err != nil:
		return nil, fmt.Errorf("queue: open %s: %w", path, err)
	case fi.Size() == 0:
		return nil, fmt.Errorf("queue: %s is empty (the agent has not initialised it yet): %w", path, ErrInvalid)
	}
	if err := checkExisting(path); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite3", dsn(path, fmt.Sprintf("mode=ro&_busy_timeout=%d", busyTimeout.Milliseconds())))
	if err != nil {
		return nil, fmt.Errorf("queue: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return &Reader{path: path, db: db}, nil
}

// Close closes the reader.
func (r *Reader) Close() error { return r.db.Close() }

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
// insertion order, until f returns an error.
func (r *Reader) Entries(ctx context.Context, f func(Entry) error) error {
	rows, err := r.db.QueryContext(ctx, `SELECT o.n, o.id, o.stream, o.seq,
		CASE WHEN o.topic = '' THEN s.topic ELSE o.topic END, o.payload, o.enc, o.created_at, o.delivered_at
		FROM outbox o JOIN streams s ON s.stream = o.stream ORDER BY o.n`)
	if err != nil {
		return fileError(r.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var e Entry
		var enc int
		var created int64
		var delivered sql.NullInt64
		if err := rows.Scan(&e.n, &e.ID, &e.Stream, &e.Seq, &e.Topic, &e.Payload, &enc, &created, &delivered); err != nil {
			return fileError(r.path, err)
		}
		if e.Payload, err = decode(e.Payload, enc, e.ID); err != nil {
			return fmt.Errorf("queue: %s: %s seq %d: %w", r.path, e.Stream, e.Seq, err)
		}
		e.CreatedAt = time.UnixMilli(created)
		if delivered.Valid {
			e.DeliveredAt = time.UnixMilli(delivered.Int64)
		}
		if err := f(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fileError(r.path, err)
	}
	return nil
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
