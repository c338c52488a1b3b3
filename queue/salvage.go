package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"
)

// Salvage (`sentinel queue salvage`): Open refuses a damaged database; Salvage copies
// every record it can still read into a new one, without writing to the damaged file, and
// says what it could not read.

// KeyRange is a stretch of insertion numbers (the outbox's n, the quarantine's q), First to
// Last inclusive; Last is math.MaxInt64 for "to the end".
type KeyRange struct{ First, Last int64 }

func (r KeyRange) String() string { return keyRange(r.First, r.Last) }

// SalvageReport says what Salvage copied and what it could not read.
type SalvageReport struct {
	From, To string
	// Records counts the outbox rows copied (pending and delivered); Pending those pending.
	Records, Pending int64
	// Undecodable counts copied rows whose id or payload does not decode: they are copied as
	// they are, and the agent sets them aside (quarantine) when it reads them.
	Undecodable int64
	// Quarantined counts the quarantine rows copied.
	Quarantined int64
	// Unreadable lists the stretches of the outbox SQLite could not read, or rows read but
	// not valid records (not copied), by insertion number; UnreadableQuarantine the same for
	// the quarantine table.
	Unreadable, UnreadableQuarantine []KeyRange
	// Lost names, from the (stream, seq) index, the records in those stretches: they are
	// recorded in the new database as missing (cause unreadable), so the agent's next start
	// reports them in a queue_loss notice. Some may have been delivered before.
	Lost []SeqRange
	// Streams is each stream's last seq in the new database: at least the old one, so no
	// seq is used twice.
	Streams map[string]int64
	// Warnings says what else could not be read (the WAL, the counters, the streams, part of
	// the index) and what that means.
	Warnings []string
}

// Salvage copies every readable record of the queue database at src (outbox, quarantine,
// stream high-water marks, loss counters and recorded gaps, and its mark file) into a new
// database at dst, which must not exist. It opens src read-only (mode=ro: nothing is written
// to it or its WAL) and reads past damaged pages. It fails (and leaves nothing at dst) when
// src cannot be read at all or dst cannot be written.
func Salvage(ctx context.Context, src, dst string) (rep SalvageReport, err error) {
	rep = SalvageReport{From: src, To: dst, Streams: map[string]int64{}}
	if err := salvagePaths(src, dst); err != nil {
		return rep, err
	}
	s, err := openSalvageSource(ctx, src, &rep)
	if err != nil {
		return rep, err
	}
	defer s.close()
	t, err := createSalvageTarget(ctx, dst)
	if err != nil {
		return rep, err
	}
	defer func() {
		if err != nil {
			t.discard()
		}
	}()
	s.readStreams(ctx, &rep)
	if err := s.copyOutbox(ctx, t, &rep); err != nil {
		return rep, err
	}
	if err := s.copyQuarantine(ctx, t, &rep); err != nil {
		return rep, err
	}
	if err := s.nameLost(ctx, &rep); err != nil {
		return rep, err
	}
	if err := s.writeState(ctx, t, &rep); err != nil {
		return rep, err
	}
	if err := t.finish(ctx, src, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// salvagePaths checks the two paths before anything is opened.
func salvagePaths(src, dst string) error {
	if holder(src) != nil {
		return fmt.Errorf("queue: salvage %s: this process has it open: %w", src, ErrInUse)
	}
	switch state, err := inspectPath(src, false); {
	case err != nil:
		return err
	case state == fileMissing:
		return fmt.Errorf("queue: salvage %s: it does not exist: %w", src, fs.ErrNotExist)
	case state == fileEmpty:
		return fmt.Errorf("queue: salvage %s: it is empty (0 bytes): there is nothing to salvage: %w", src, ErrInvalid)
	}
	for _, p := range []string{dst, dst + "-wal", dst + "-shm", markPathOf(dst)} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("queue: salvage to %s: %s exists; salvage writes a new database and never overwrites one: %w", dst, p, ErrInvalid)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("queue: salvage to %s: %w", dst, err)
		}
	}
	_, err := inspectPath(dst, true)
	return err
}

// salvageSource is the damaged database, read in one read transaction.
type salvageSource struct {
	path    string
	db      *sql.DB
	rt      *readTx
	cols    map[string]map[string]bool // table → its columns
	streams map[string]sourceStream    // the streams table, as far as it could be read
	maxSeq  map[string]int64           // the highest seq seen per stream
	skipped []KeyRange                 // outbox rows not copied, in order
}

// sourceStream is a row of the source's streams table.
type sourceStream struct {
	last      int64
	topic     string
	chainSeq  sql.NullInt64
	chainHash []byte
}

// openSalvageSource opens src read-only: with its WAL (mode=ro), or, when that cannot be
// opened, without it (immutable=1; records only in the WAL are then not salvaged).
func openSalvageSource(ctx context.Context, src string, rep *SalvageReport) (*salvageSource, error) {
	var firstErr error
	for i, d := range []string{readOnlyDSN(src), dsn(src, "immutable=1")} {
		db := sql.OpenDB(&connector{ro: d})
		db.SetMaxOpenConns(1)
		rt, err := beginRead(ctx, db)
		if err == nil {
			if i > 0 {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("the database could not be opened with its WAL (%v): records only in %s-wal are not salvaged", firstErr, src))
			}
			s := &salvageSource{path: src, db: db, rt: rt, maxSeq: map[string]int64{}}
			if err := s.readColumns(ctx); err != nil {
				s.close()
				return nil, err
			}
			return s, nil
		}
		_ = db.Close()
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("queue: salvage %s: it cannot be read at all (its first page, the header, is damaged or it is not an SQLite database): %w", src, fileError(src, firstErr))
}

func (s *salvageSource) close() {
	s.rt.end()
	_ = s.db.Close()
}

// readColumns learns which tables and columns the source has (its schema version).
func (s *salvageSource) readColumns(ctx context.Context) error {
	s.cols = map[string]map[string]bool{}
	for _, table := range []string{"outbox", "quarantine", "streams", "counters", "gaps"} {
		rows, err := s.rt.conn.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
		if err != nil {
			return fmt.Errorf("queue: salvage %s: read the schema: %w", s.path, fileError(s.path, err))
		}
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				rows.Close()
				return fmt.Errorf("queue: salvage %s: read the schema: %w", s.path, err)
			}
			if s.cols[table] == nil {
				s.cols[table] = map[string]bool{}
			}
			s.cols[table][c] = true
		}
		rows.Close()
	}
	if s.cols["outbox"] == nil {
		return fmt.Errorf("queue: salvage %s: it has no outbox table (not a Sentinel queue, or its schema is damaged): %w", s.path, ErrForeignDatabase)
	}
	return nil
}

// col is the column name if the source's table has it, otherwise the fallback expression.
func (s *salvageSource) col(table, name, fallback string) string {
	if s.cols[table][name] {
		return name
	}
	return fallback
}

// readStreams reads the source's streams table, past damage (what cannot be read is said in
// the warnings).
func (s *salvageSource) readStreams(ctx context.Context, rep *SalvageReport) {
	s.streams = map[string]sourceStream{}
	err := readPast(ctx, s.rt.conn, `SELECT rowid, stream, last_seq, `+s.col("streams", "topic", "''")+`, `+
		s.col("streams", "chain_seq", "NULL")+`, `+s.col("streams", "chain_hash", "NULL")+` FROM streams WHERE rowid >= ? ORDER BY rowid`, nil, math.MinInt64,
		func(rows *sql.Rows) (int64, error) {
			var id int64
			var st sourceStream
			var name string
			if err := rows.Scan(&id, &name, &st.last, &st.topic, &st.chainSeq, &st.chainHash); err != nil {
				return 0, err
			}
			s.streams[name] = st
			return id, nil
		}, func(lo, hi int64) {
			rep.Warnings = append(rep.Warnings, "part of the streams table could not be read: the records of the streams it lost are not copied (they have no topic to go to; counted as unreadable), and those streams continue after the old high-water mark")
		})
	if err != nil {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the streams table could not be read (%v): no record can be copied as deliverable (none has a known stream and topic); each stream continues after the old high-water mark", err))
	}
}

// copyOutbox copies every readable outbox row, as stored, with its insertion number. A row
// the agent could never publish (its stream not in the streams table, as a damaged byte in
// its stream column makes it; or no valid topic) is not copied: salvage never invents a
// stream. It is counted as unreadable, named as lost when the index allows, and said in a
// warning.
func (s *salvageSource) copyOutbox(ctx context.Context, t *salvageTarget, rep *SalvageReport) error {
	q := fmt.Sprintf(`SELECT n, %s, stream, seq, topic, payload, %s, created_at, delivered_at, %s FROM outbox WHERE n >= ? ORDER BY n`,
		s.col("outbox", "uid", "unhex(replace(id, '-', ''))"), s.col("outbox", "enc", "0"), s.col("outbox", "attempts", "0"))
	notCopied := func(lo, hi int64) {
		s.skipped = append(s.skipped, KeyRange{lo, hi})
		rep.Unreadable = append(rep.Unreadable, KeyRange{lo, hi})
	}
	unpublishable := map[string][]int64{} // why → the rows not copied for it
	defer func() {
		for _, why := range slices.Sorted(maps.Keys(unpublishable)) {
			var rs []string
			for _, r := range seqRanges64("", unpublishable[why]) {
				rs = append(rs, keyRange(r.First, r.Last))
			}
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("outbox rows n=%s are not copied (counted as unreadable): %v", strings.Join(rs, ", "), why))
		}
	}()
	err := readPast(ctx, s.rt.conn, q, nil, math.MinInt64, func(rows *sql.Rows) (int64, error) {
		var n int64
		var uid, payload []byte
		var stream, topic sql.NullString
		var seq, enc, created, delivered, attempts sql.NullInt64
		if err := rows.Scan(&n, &uid, &stream, &seq, &topic, &payload, &enc, &created, &delivered, &attempts); err != nil {
			if n == 0 {
				return 0, err
			}
			notCopied(n, n) // a column of the wrong type: damaged
			return n, nil
		}
		if err := s.publishable(stream.String, topic.String); err != nil {
			notCopied(n, n)
			unpublishable[err.Error()] = append(unpublishable[err.Error()], n)
			return n, nil
		}
		if err := t.exec(ctx, `INSERT INTO outbox (n, uid, stream, seq, topic, payload, enc, created_at, delivered_at, attempts)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, n, uid, stream, seq, topic, payload, enc, created, delivered, attempts); isConstraint(err) {
			notCopied(n, n) // not a valid record (a missing column, a duplicate seq)
			return n, nil
		} else if err != nil {
			return n, errTarget{err}
		}
		rep.Records++
		if !delivered.Valid {
			rep.Pending++
		}
		t.rows++
		t.bytes += rowSize(len(payload), len(topic.String))
		s.maxSeq[stream.String] = max(s.maxSeq[stream.String], seq.Int64)
		if !decodable(uid, payload, enc.Int64) {
			rep.Undecodable++
		}
		return n, nil
	}, notCopied)
	if err != nil {
		return fmt.Errorf("queue: salvage %s: read the outbox: %w", s.path, err)
	}
	return nil
}

// publishable is the outbox's rule (publishable in outbox.go) for a source row of stream
// with its stored topic ("": its stream's topic).
func (s *salvageSource) publishable(stream, topic string) error {
	st, known := s.streams[stream]
	if topic == "" {
		topic = st.topic
	}
	return publishable(stream, known, topic)
}

// decodable reports whether a stored row gives its record back.
func decodable(uid, payload []byte, enc int64) bool {
	u, err := uuid.FromBytes(uid)
	if err != nil {
		return false
	}
	_, err = decode(payload, int(enc), u.String())
	return err == nil
}

// copyQuarantine copies the readable rows of the quarantine table (schema version 4 on).
func (s *salvageSource) copyQuarantine(ctx context.Context, t *salvageTarget, rep *SalvageReport) error {
	if s.cols["quarantine"] == nil {
		return nil
	}
	const q = `SELECT q, n, uid, stream, seq, topic, payload, enc, created_at, attempts, quarantined_at, reason FROM quarantine WHERE q >= ? ORDER BY q`
	skipped := func(lo, hi int64) { rep.UnreadableQuarantine = append(rep.UnreadableQuarantine, KeyRange{lo, hi}) }
	err := readPast(ctx, s.rt.conn, q, nil, math.MinInt64, func(rows *sql.Rows) (int64, error) {
		v := make([]any, 12)
		for i := range v {
			v[i] = new(any)
		}
		if err := rows.Scan(v...); err != nil {
			return 0, err
		}
		key, _ := (*v[0].(*any)).(int64)
		args := make([]any, len(v))
		for i := range v {
			args[i] = *v[i].(*any)
		}
		if err := t.exec(ctx, `INSERT INTO quarantine (q, n, uid, stream, seq, topic, payload, enc, created_at, attempts, quarantined_at, reason)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...); isConstraint(err) {
			skipped(key, key)
			return key, nil
		} else if err != nil {
			return key, errTarget{err}
		}
		rep.Quarantined++
		if st, ok := args[3].(string); ok {
			if seq, ok := args[4].(int64); ok {
				s.maxSeq[st] = max(s.maxSeq[st], seq)
			}
		}
		return key, nil
	}, skipped)
	if err != nil {
		return fmt.Errorf("queue: salvage %s: read the quarantine: %w", s.path, err)
	}
	return nil
}

// notCopied reports whether outbox row n was not copied.
func (s *salvageSource) notCopied(n int64) bool {
	i := sort.Search(len(s.skipped), func(i int) bool { return s.skipped[i].Last >= n })
	return i < len(s.skipped) && s.skipped[i].First <= n
}

// nameLost reads the (stream, seq) index, which holds each row's insertion number, for the
// rows not copied: those are named as lost, by stream and seq.
func (s *salvageSource) nameLost(ctx context.Context, rep *SalvageReport) error {
	streams := s.streamNames()
	idx, err := s.seqIndex(ctx)
	if err != nil || idx == "" {
		if len(s.skipped) > 0 {
			rep.Warnings = append(rep.Warnings, "the (stream, seq) index cannot be used: the records in the unreadable stretches cannot be named")
		}
		return nil
	}
	q := `SELECT seq, n FROM outbox INDEXED BY "` + strings.ReplaceAll(idx, `"`, `""`) + `" WHERE stream = ? AND seq >= ? ORDER BY seq`
	for _, stream := range streams {
		var lost []int64
		err := readPast(ctx, s.rt.conn, q, []any{stream}, math.MinInt64, func(rows *sql.Rows) (int64, error) {
			var seq, n int64
			if err := rows.Scan(&seq, &n); err != nil {
				return 0, err
			}
			s.maxSeq[stream] = max(s.maxSeq[stream], seq)
			if s.notCopied(n) {
				lost = append(lost, seq)
			}
			return seq, nil
		}, func(lo, hi int64) {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("the index is damaged for %s seq %s: records there that were not copied cannot be named", stream, keyRange(lo, hi)))
		})
		if err != nil {
			return fmt.Errorf("queue: salvage %s: read the index: %w", s.path, err)
		}
		rep.Lost = append(rep.Lost, seqRanges64(stream, lost)...)
	}
	return nil
}

// seqRanges64 collapses sorted seqs into ranges.
func seqRanges64(stream string, seqs []int64) []SeqRange {
	var out []SeqRange
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		out = append(out, SeqRange{Stream: stream, First: seqs[i], Last: seqs[j], Cause: causeUnreadable})
		i = j + 1
	}
	return out
}

// streamNames lists the streams of the streams table (a copied row's stream is one of them;
// a name found only elsewhere, in a damaged row, is not a stream).
func (s *salvageSource) streamNames() []string {
	return slices.Sorted(maps.Keys(s.streams))
}

// seqIndex finds the unique index on outbox (stream, seq).
func (s *salvageSource) seqIndex(ctx context.Context) (string, error) {
	rows, err := s.rt.conn.QueryContext(ctx, `SELECT l.name FROM pragma_index_list('outbox') l
		WHERE l."unique" AND (SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_index_info(l.name) ORDER BY seqno)) = 'stream,seq'`)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var name string
	if rows.Next() {
		if err := rows.Scan(&name); err != nil {
			return "", err
		}
	}
	return name, rows.Err()
}
