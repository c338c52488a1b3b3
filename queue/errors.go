package queue

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// ErrForeignDatabase means the file at the outbox path is not a Sentinel queue database:
	// not SQLite at all, or SQLite that belongs to something else. Open never modifies it.
	ErrForeignDatabase = errors.New("queue: not a sentinel queue database")
	// ErrCorrupt means SQLite reported the queue database as malformed, or its start-up check
	// (PRAGMA quick_check) failed. Open never modifies such a file; `sentinel queue salvage`
	// copies what is readable into a new one.
	ErrCorrupt = errors.New("queue: database is corrupt")
	// ErrInUse is returned by Open for a database this process has open already: a process
	// opens its queue database once (see OpenReader, which shares the open Outbox).
	ErrInUse = errors.New("queue: database already open in this process")
	// ErrUnwritable means the database or its directory cannot be written by this process
	// (permissions, a read-only file system).
	ErrUnwritable = errors.New("queue: not writable")
	// ErrSchemaTooNew means the database was written by a newer version of the agent.
	ErrSchemaTooNew = errors.New("queue: database schema is newer than this program")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("queue: outbox closed")
	// ErrFull is returned by Append when the outbox is at its capacity with undelivered
	// records and the policy is reject_new. The record is not stored; the loss is counted.
	ErrFull = errors.New("queue: full of undelivered records")
	// ErrInvalid is returned for invalid arguments or options.
	ErrInvalid = errors.New("queue: invalid argument")
)
