package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/sentinel-edge/sentinel/internal/chain"
)

// The record chain in the writer (docs/records.md, "When the chain is computed"). With
// Options.Chain every record of every stream is linked, when it is stored, to the stream's
// chain head (the hash of its previous record, or the stream's genesis for its first), inside
// the transaction that assigns its seq: the chained record is what is stored and published,
// byte for byte, on every retry, and the stream's head (streams.chain_seq, chain_hash) moves
// in the same transaction. A record that is not stored (its build failed, the outbox is full,
// the transaction failed) moves nothing: the next record of its stream is built and linked
// again with the seq and the head it left. After a loss behind the high-water mark the head
// is the mark's (start.go, continueChains).

// position returns where stream stands in this transaction: read from the database once, then
// as this transaction's inserts moved it.
func (t *txRun) position(stream string) (*streamPos, error) {
	if p, ok := t.pos[stream]; ok {
		return p, nil
	}
	// Read once per stream and transaction rather than cached across transactions: BEGIN
	// IMMEDIATE makes this correct even if another process appends.
	p := &streamPos{}
	var cs sql.NullInt64
	err := t.tx.QueryRowContext(t.ctx, `SELECT last_seq, chain_seq, chain_hash FROM streams WHERE stream = ?`, stream).Scan(&p.last, &cs, &p.chainHash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("queue: append to %s: read last seq: %w", stream, err)
	}
	p.chainSeq = cs.Int64
	t.pos[stream] = p
	return p, nil
}

// advance moves stream to the record just inserted at seq (hash: its chain hash, nil for an
// unchained record, which leaves the chain head where it was).
func (t *txRun) advance(stream string, seq int64, hash []byte) {
	p := t.pos[stream] // position was read before any insert of the stream
	if p == nil {
		p = &streamPos{}
		t.pos[stream] = p
	}
	p.last = seq
	t.used.seqs[stream] = seq
	delete(t.used.hashes, stream)
	if hash != nil {
		p.chainSeq, p.chainHash = seq, hash
		t.used.hashes[stream] = hash
	}
}

// savePositions writes the last seq and chain head of every stream this transaction appended
// to.
func (t *txRun) savePositions() error {
	if len(t.used.seqs) == 0 {
		return nil
	}
	set, err := t.stmt(`UPDATE streams SET last_seq = ?, chain_seq = ?, chain_hash = ? WHERE stream = ?`)
	if err != nil {
		return err
	}
	for stream := range t.used.seqs {
		p := t.pos[stream]
		var cs any
		if p.chained() {
			cs = p.chainSeq
		}
		if _, err := set.ExecContext(t.ctx, p.last, cs, p.chainHash, stream); err != nil {
			return fmt.Errorf("queue: append to %s: %w", stream, err)
		}
	}
	return nil
}

// canonicalize makes the RFC 8785 form of p.payload, a record as built, for linkTo (any
// goroutine). A payload that cannot be chained (not a JSON object as RFC 8785 needs, or one
// with a chain member already) sets p.err: its append fails like a failed build.
func (p *prepared) canonicalize() {
	if p.canon, p.err = chain.Prepare(p.payload); p.err != nil {
		p.err = fmt.Errorf("queue: append: chain seq %d: %w", p.seq, p.err)
	}
}

// linkTo chains the canonical record to prev (nil: the stream's genesis) with u, in seq order:
// p.payload becomes the chained record and p.hash its hash.
func (p *prepared) linkTo(u *chain.Unit, stream string, prev []byte) {
	if p.err != nil || p.canon == nil {
		return
	}
	chained, hash, err := u.LinkPrepared(stream, prev, p.canon)
	if err != nil {
		p.err = fmt.Errorf("queue: append to %s: chain seq %d: %w", stream, p.seq, err)
		return
	}
	p.canon.Release()
	p.canon = nil
	p.payload, p.prev, p.hash = chained, prev, hash
}

// signNotice puts every stream's head, as it is in this transaction before the notice, into
// n and signs it with the notice's ts.
func (t *txRun) signNotice(n *notice) error {
	u := t.o.chain
	if u == nil {
		return nil
	}
	h, err := readHeads(t.ctx, t.tx)
	if err != nil {
		return fmt.Errorf("queue: notice: %w", err)
	}
	for stream, p := range t.pos {
		if p.chained() {
			h[stream] = chain.NewStreamHead(p.chainSeq, p.chainHash)
		}
	}
	n.Head = h
	if n.HeadSig, err = u.SignHead(n.TS, h); err != nil {
		return fmt.Errorf("queue: notice: %w", err)
	}
	return nil
}

// readHeads reads every chained stream's head.
func readHeads(ctx context.Context, q queryer) (chain.Head, error) {
	rows, err := q.QueryContext(ctx, `SELECT stream, chain_seq, chain_hash FROM streams WHERE chain_hash IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("queue: read the chain heads: %w", err)
	}
	defer rows.Close()
	h := chain.Head{}
	for rows.Next() {
		var stream string
		var seq int64
		var hash []byte
		if err := rows.Scan(&stream, &seq, &hash); err != nil {
			return nil, fmt.Errorf("queue: read the chain heads: %w", err)
		}
		h[stream] = chain.NewStreamHead(seq, hash)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: read the chain heads: %w", err)
	}
	return h, nil
}

// Heads returns the chain head of every stream: the seq and hash of its last chained record
// stored (streams without a chained record are left out), read in one snapshot. It is what
// the unit signs into its status (docs/records.md, "Signed heads").
func (o *Outbox) Heads(ctx context.Context) (chain.Head, error) {
	if o.isClosed() {
		return nil, ErrClosed
	}
	h, err := readHeads(ctx, o.db)
	if err != nil {
		return nil, o.readErr("heads", err)
	}
	return h, nil
}

// Heads is Outbox.Heads for a Reader. A database from before the chain (schema version 5 or
// older) has no heads: an error says so.
func (r *Reader) Heads(ctx context.Context) (chain.Head, error) {
	h, err := readHeads(ctx, r.db)
	if err != nil {
		if strings.Contains(err.Error(), "no such column") {
			return nil, fmt.Errorf("queue: %s has a schema version before 6 (no record chain); start the agent once to migrate it", r.path)
		}
		return nil, fileError(r.path, err)
	}
	return h, nil
}
