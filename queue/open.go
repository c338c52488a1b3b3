package queue

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Opening a database file: what Open and OpenReader look at before they trust it. Nothing
// here opens the file outside SQLite (a stat, access(2) and SQLite's own connections only):
// see registry.go for why.

// connector opens every connection of one pool. Until writable is set it opens them
// read-only (mode=ro): Open's start-up checks (foreign file, newer schema, quick_check) run
// through the Outbox's own pool and must never write to a file that turns out to be foreign
// or damaged (a read-write connection may run WAL recovery into it and checkpoints on
// close). Afterwards it opens them read-write, in WAL mode.
type connector struct {
	drv      sqlite3.SQLiteDriver
	ro, rw   string
	writable atomic.Bool
}

func (c *connector) Connect(context.Context) (driver.Conn, error) {
	if c.writable.Load() {
		return c.drv.Open(c.rw)
	}
	return c.drv.Open(c.ro)
}

func (c *connector) Driver() driver.Driver { return &c.drv }

// dsn builds a go-sqlite3 URI for path with the given query parameters.
func dsn(path, params string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(path) + "?" + params
}

func readOnlyDSN(path string) string {
	return dsn(path, fmt.Sprintf("mode=ro&_busy_timeout=%d", busyTimeout.Milliseconds()))
}

func readWriteDSN(path, syncMode string) string {
	return dsn(path, "_journal_mode=WAL&_synchronous="+syncMode+
		fmt.Sprintf("&_busy_timeout=%d", busyTimeout.Milliseconds())+"&_foreign_keys=on&_txlock=immediate")
}

// rowQuerier is what the checks need: a pool or one of its connections.
type rowQuerier interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// fileState is what a stat says about the database path.
type fileState int

const (
	fileMissing fileState = iota // no file: Open creates it
	fileEmpty                    // 0 bytes: Open initialises it
	filePresent
)

// inspectPath looks at path and its directory without opening either: it must be a regular
// file (or nothing yet) in a directory this process can write, since SQLite creates the
// -wal and -shm files there and Open the high-water mark. An error names the file, what is
// wrong and what to do.
func inspectPath(path string, needWrite bool) (fileState, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := usableDir(path, needWrite); err != nil {
			return 0, err
		}
		return fileMissing, nil
	case err != nil:
		return 0, fmt.Errorf("queue: open %s: %w", path, err)
	case fi.IsDir():
		return 0, fmt.Errorf("queue: open %s: is a directory: %w", path, ErrInvalid)
	case !fi.Mode().IsRegular():
		return 0, fmt.Errorf("queue: open %s: not a regular file (%s); queue.path must name a database file: %w", path, fi.Mode().Type(), ErrInvalid)
	}
	if needWrite {
		if err := usableDir(path, true); err != nil {
			return 0, err
		}
		if err := canWrite(path); err != nil {
			return 0, unwritable(path, path, err)
		}
	}
	if fi.Size() == 0 {
		return fileEmpty, nil
	}
	return filePresent, nil
}

// usableDir checks that the directory of path exists (and, with needWrite, is writable).
func usableDir(path string, needWrite bool) error {
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("queue: open %s: the directory %s does not exist: create it, writable by the agent's user (the package's systemd unit makes /var/lib/sentinel with StateDirectory=sentinel), or point queue.path elsewhere: %w",
			path, dir, fs.ErrNotExist)
	case err != nil:
		return fmt.Errorf("queue: open %s: the directory %s cannot be reached: %w", path, dir, err)
	case !di.IsDir():
		return fmt.Errorf("queue: open %s: %s is not a directory: %w", path, dir, ErrInvalid)
	}
	if !needWrite {
		return nil
	}
	if err := canWrite(dir); err != nil {
		return unwritable(path, dir, err)
	}
	return nil
}

func unwritable(path, what string, err error) error {
	base := filepath.Base(path)
	if errors.Is(err, fs.ErrPermission) {
		err = errors.New("permission denied")
	}
	return fmt.Errorf("queue: open %s: %s is not writable (%v): the queue writes %s, its -wal and -shm files and its high-water mark %s.hwm there; make the directory and the file writable by the agent's user (e.g. chown sentinel:sentinel), mount the file system read-write, or point queue.path at a writable place: %w",
		path, what, err, base, base, ErrUnwritable)
}

// inspectDB decides, through db, whether the database is ours, an empty SQLite database, or
// foreign, and refuses a newer schema. It only reads.
func inspectDB(ctx context.Context, db rowQuerier, path string) (empty bool, err error) {
	var app, ver int
	var tables []string
	err = func() error {
		if err := db.QueryRowContext(ctx, "PRAGMA application_id").Scan(&app); err != nil {
			return err
		}
		if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&ver); err != nil {
			return err
		}
		rows, err := db.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return err
			}
			tables = append(tables, n)
		}
		return rows.Err()
	}()
	if err != nil {
		return false, fileError(path, err)
	}
	switch {
	case app == ApplicationID && ver > schemaVersion():
		return false, fmt.Errorf("queue: open %s: schema version %d, this program knows up to %d; upgrade the agent, or move it aside to start an empty queue: %w",
			path, ver, schemaVersion(), ErrSchemaTooNew)
	case app == ApplicationID:
		return false, nil
	case app == 0 && ver == 0 && len(tables) == 0:
		return true, nil
	case app != 0:
		return false, foreign(path, fmt.Sprintf("it is an SQLite database with application_id %#x, not %#x", app, ApplicationID))
	default:
		return false, foreign(path, fmt.Sprintf("it is an SQLite database of another application (tables %s)", strings.Join(tables, ", ")))
	}
}

// quickCheckSQL is the start-up check; a package variable so tests can make it slow.
var quickCheckSQL = "PRAGMA quick_check(10)"

// errBudget says that the start-up check did not finish within its budget.
var errBudget = errors.New("queue: the start-up check did not finish within its budget")

// quickCheck runs PRAGMA quick_check (every b-tree page of the file and its WAL is read and
// its structure checked; indexes are not compared with their tables) within budget. It
// returns errBudget when the budget ran out first.
func quickCheck(ctx context.Context, db rowQuerier, path string, budget time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	msgs, err := pragmaRows(cctx, db, quickCheckSQL)
	if err != nil && cctx.Err() != nil && ctx.Err() == nil {
		return errBudget
	}
	if err != nil {
		return fileError(path, err)
	}
	if len(msgs) == 1 && msgs[0] == "ok" {
		return nil
	}
	return corrupt(path, "quick_check: "+strings.Join(msgs, "; "))
}

// partialWhere finds the WHERE clause of a partial index's CREATE INDEX statement.
var partialWhere = regexp.MustCompile(`(?is)\bWHERE\b(.*)$`)

// walkTrees reads every page of every b-tree of the database (each table and each index,
// with a count over it) with cell_size_check on: a damaged page, or a cell that does not fit
// its page, makes SQLite answer SQLITE_CORRUPT. It is several times cheaper than quick_check
// (it does not decode rows nor check the freelist: about 0.4 s for 1,000,000 records here),
// and is what Open runs before it starts when quick_check runs out of its budget.
func walkTrees(ctx context.Context, db rowQuerier, path string) error {
	if _, err := db.ExecContext(ctx, "PRAGMA cell_size_check = ON"); err != nil {
		return fileError(path, err)
	}
	type tree struct{ kind, name, table, sql string }
	var trees []tree
	rows, err := db.QueryContext(ctx, `SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master
		WHERE type IN ('table', 'index') AND rootpage > 0 ORDER BY type DESC, name`)
	if err != nil {
		return fileError(path, err)
	}
	for rows.Next() {
		var t tree
		if err := rows.Scan(&t.kind, &t.name, &t.table, &t.sql); err != nil {
			rows.Close()
			return fileError(path, err)
		}
		trees = append(trees, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fileError(path, err)
	}
	quote := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	for _, t := range trees {
		q := "SELECT count(*) FROM " + quote(t.name) + " NOT INDEXED"
		if t.kind == "index" {
			q = "SELECT count(*) FROM " + quote(t.table) + " INDEXED BY " + quote(t.name)
			if m := partialWhere.FindStringSubmatch(t.sql); m != nil {
				q += " WHERE " + m[1]
			}
		}
		var n int64
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			if isCorrupt(err) {
				return corrupt(path, fmt.Sprintf("%s %s: %v", t.kind, t.name, err))
			}
			return fileError(path, err)
		}
	}
	return nil
}

// pragmaRows runs a pragma that answers one text column per row.
func pragmaRows(ctx context.Context, db rowQuerier, q string) ([]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, rows.Err()
}

func foreign(path, why string) error {
	return fmt.Errorf("queue: open %s: %s; it was left untouched: move it aside (or point the queue at another path) and start again: %w",
		path, why, ErrForeignDatabase)
}

// corrupt is the error for a damaged database: it names the file and what to do.
func corrupt(path, detail string) error {
	return fmt.Errorf("queue: open %s: the database is damaged (%s); it was left untouched: stop the agent, run `sentinel queue salvage --config FILE --out NEW.db` to copy every readable record into a new database, keep the damaged file for analysis, move the new one to queue.path and start again: %w",
		path, detail, ErrCorrupt)
}

// fileError maps SQLite's "not a database" and "corrupt" errors to the package sentinels,
// naming the file and what to do.
func fileError(path string, err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrNotADB:
			return foreign(path, "it is not an SQLite database")
		case sqlite3.ErrCorrupt:
			return corrupt(path, err.Error())
		}
	}
	return fmt.Errorf("queue: open %s: %w", path, err)
}
