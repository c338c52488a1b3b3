// Package chain makes a unit's records provable: every record of every stream carries the
// hash of the stream's previous record (prev) and its own hash, computed once, when it is
// stored, over the RFC 8785 canonical form of the record; the unit signs, with its Ed25519
// key, heads that say where each stream stands; a verifier replays captured messages and
// names every record edited, deleted, replayed, forked or restarted. docs/records.md is the
// specification a platform implements its own verifier from.
//
// The queue calls Prepare (any goroutine) and Prepared.Link (in seq order, inside the
// transaction that assigns the seq), or Unit.Link for both at once; the agent signs heads
// with Unit.SignHead; `sentinel verify-records` runs a Verifier.
package chain

import "errors"

// Errors, matched with errors.Is.
var (
	// ErrNotCanonicalizable: the JSON is not I-JSON (RFC 7493), so it has no RFC 8785 form.
	ErrNotCanonicalizable = errors.New("chain: not canonicalizable JSON (RFC 8785 needs I-JSON)")
	// ErrRecord: the payload is not a record that can be chained (not an object, or it
	// already has a chain member).
	ErrRecord = errors.New("chain: not a record that can be chained")
	// ErrUnchained: the record carries no prev and hash.
	ErrUnchained = errors.New("chain: the record is not chained (no prev and hash)")
	// ErrMalformed: a chained record whose chain members (or id, seq) are not as specified.
	ErrMalformed = errors.New("chain: malformed chained record")
	// ErrHashMismatch: the record's hash is not the hash of its content: it was changed
	// after it was chained.
	ErrHashMismatch = errors.New("chain: the record's hash does not match its content")
	// ErrAlg: an unknown hash algorithm.
	ErrAlg = errors.New("chain: unknown hash algorithm")
	// ErrKey: a key file or key that is not an Ed25519 key as specified.
	ErrKey = errors.New("chain: bad key")
	// ErrHead: a head that cannot be signed or checked (bad seq, hash or stream).
	ErrHead = errors.New("chain: bad head")
)
