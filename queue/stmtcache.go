package queue

import (
	"context"
	"database/sql"
	"fmt"
)

// sqlTx is what the writer's steps need of a transaction: *sql.Tx (salvage, migrations) and
// writerTx are ones.
type sqlTx interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, q string) (*sql.Stmt, error)
}

// writerTx is a transaction of the writer goroutine on its own connection, opened with BEGIN
// IMMEDIATE and ended with COMMIT or ROLLBACK, whose statements are prepared once per
// connection and kept (stmts): database/sql prepares every statement of a *sql.Tx again in
// each transaction, which cost about a fifth of an append's CPU (docs/BENCHMARKS.md,
// "Records chain in the writer"). Every query of the writer is a constant string, so the
// cache stays small.
type writerTx struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

// prepared returns q's statement, prepared on the writer's connection at its first use.
func (w *writerTx) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	if s, ok := w.stmts[q]; ok {
		return s, nil
	}
	s, err := w.conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("queue: prepare: %w", err)
	}
	w.stmts[q] = s
	return s, nil
}

func (w *writerTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	s, err := w.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

func (w *writerTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	s, err := w.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

func (w *writerTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	s, err := w.PrepareContext(ctx, q)
	if err != nil {
		return w.conn.QueryRowContext(ctx, q, args...) // the same error, through the Row
	}
	return s.QueryRowContext(ctx, args...)
}

// begin starts a transaction (BEGIN IMMEDIATE: the write lock at once, as the pool's
// _txlock=immediate does for the others).
func (w *writerTx) begin(ctx context.Context) error {
	if _, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("queue: begin: %w", err)
	}
	return nil
}

func (w *writerTx) commit(ctx context.Context) error {
	if _, err := w.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("queue: commit: %w", err)
	}
	return nil
}

// rollback ends a failed transaction (SQLite may have rolled it back already: an error
// then is of no interest).
func (w *writerTx) rollback(ctx context.Context) { _, _ = w.conn.ExecContext(ctx, "ROLLBACK") }

// close closes the kept statements (before the connection).
func (w *writerTx) close() {
	for q, s := range w.stmts {
		_ = s.Close()
		delete(w.stmts, q)
	}
}
