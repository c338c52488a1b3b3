package queue

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Policies for an outbox full of undelivered records.
const (
	// OnFullRejectNew refuses new records (Append returns ErrFull); what is stored stays.
	OnFullRejectNew = "reject_new"
	// OnFullDropOldest deletes the oldest undelivered records to make room.
	OnFullDropOldest = "drop_oldest"
)

// NoticeStream is the stream of the outbox's own queue_loss notices (see Capacity.NoticeTopic).
const NoticeStream = "queue"

// rowOverhead is what one record costs on disk besides its stored payload and topic: the id
// (16 bytes), the stream, seq, times and counters, the cell header, the (stream, seq) index,
// the pending or delivered index, and page slack. Measured by BenchmarkFootprint (sealed
// passage records: accounted/disk 1.006; masked only: 1.03).
const rowOverhead = 100

// Tunables; package variables so tests can change them.
var (
	// purgeInterval is how often delivered records older than the retention are deleted.
	purgeInterval = time.Minute
	// purgeChunk bounds the rows one purge transaction deletes.
	purgeChunk = 5000
	// freeSlack is the share of a limit that is freed at once when delivered records make
	// room, so that a full outbox does not delete on every append.
	freeSlack = 0.01
)

// Capacity bounds the outbox. Until SetCapacity is called the outbox is unbounded and keeps
// delivered records for ever.
type Capacity struct {
	// MaxRecords bounds the number of stored records (pending and delivered); 0 = no bound.
	MaxRecords int64
	// MaxBytes bounds the estimated size of the stored records: stored (compressed)
	// payloads and topics plus a fixed per-record overhead for ids and indexes. 0 = no bound.
	MaxBytes int64
	// Retention is how long delivered records are kept (for `sentinel queue ids` and
	// de-duplication look-ups); older ones are purged every minute. When the outbox is full,
	// delivered records are purged first, whatever their age. 0 purges delivered records at
	// the next purge.
	Retention time.Duration
	// OnFull is OnFullRejectNew (default) or OnFullDropOldest.
	OnFull string
	// NoticeTopic, when set, is where the outbox publishes (through its own stream
	// NoticeStream) a queue_loss notice after records were dropped, rejected or could not be
	// written, as soon as there is room for it, so the loss is reported upstream.
	NoticeTopic string
}

func (c Capacity) validate() error {
	switch {
	case c.MaxRecords < 0:
		return fmt.Errorf("queue: capacity: max records must be >= 0, got %d: %w", c.MaxRecords, ErrInvalid)
	case c.MaxBytes < 0:
		return fmt.Errorf("queue: capacity: max bytes must be >= 0, got %d: %w", c.MaxBytes, ErrInvalid)
	case c.Retention < 0:
		return fmt.Errorf("queue: capacity: retention must be >= 0, got %s: %w", c.Retention, ErrInvalid)
	case c.OnFull != "" && c.OnFull != OnFullRejectNew && c.OnFull != OnFullDropOldest:
		return fmt.Errorf("queue: capacity: on_full must be %s or %s, got %q: %w", OnFullRejectNew, OnFullDropOldest, c.OnFull, ErrInvalid)
	case c.NoticeTopic != "" && !validTopic(c.NoticeTopic):
		return fmt.Errorf("queue: capacity: notice topic %q is not a valid MQTT publish topic: %w", c.NoticeTopic, ErrInvalid)
	}
	return nil
}

// SetCapacity sets the bounds, retention and full policy; they apply from the next write.
func (o *Outbox) SetCapacity(c Capacity) error {
	if err := c.validate(); err != nil {
		return err
	}
	if c.OnFull == "" {
		c.OnFull = OnFullRejectNew
	}
	o.capMu.Lock()
	o.capacity = c
	o.capSet = true
	o.capMu.Unlock()
	o.triggerPurge()
	return nil
}

func (o *Outbox) capacityNow() Capacity {
	o.capMu.Lock()
	defer o.capMu.Unlock()
	return o.capacity
}

// rowSize is the accounted size of one record.
func rowSize(stored, topic int) int64 { return int64(stored + topic + rowOverhead) }

// counters are the rows of the counters table, read once per transaction that needs them.
type counters struct {
	Rows, Bytes                               int64
	DroppedOldest, RejectedFull, FailedWrites int64
	Quarantined, Abandoned                    int64
	Missing                                   int64 // seqs the database lost behind its high-water mark (start.go)
	Reported                                  int64
}

func (c counters) lost() int64 {
	return c.DroppedOldest + c.RejectedFull + c.FailedWrites + c.Quarantined + c.Abandoned + c.Missing
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func readCounters(ctx context.Context, q queryer) (counters, error) {
	var c counters
	rows, err := q.QueryContext(ctx, `SELECT name, value FROM counters`)
	if err != nil {
		return c, fmt.Errorf("queue: read counters: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			return c, fmt.Errorf("queue: read counters: %w", err)
		}
		switch name {
		case "rows":
			c.Rows = v
		case "bytes":
			c.Bytes = v
		case "dropped_oldest":
			c.DroppedOldest = v
		case "rejected_full":
			c.RejectedFull = v
		case "failed_writes":
			c.FailedWrites = v
		case "quarantined":
			c.Quarantined = v
		case "abandoned":
			c.Abandoned = v
		case "missing":
			c.Missing = v
		case "reported":
			c.Reported = v
		}
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("queue: read counters: %w", err)
	}
	return c, nil
}

func writeCounters(ctx context.Context, tx *sql.Tx, c counters) error {
	for name, v := range map[string]int64{
		"rows": c.Rows, "bytes": c.Bytes, "dropped_oldest": c.DroppedOldest,
		"rejected_full": c.RejectedFull, "failed_writes": c.FailedWrites, "reported": c.Reported,
		"quarantined": c.Quarantined, "abandoned": c.Abandoned, "missing": c.Missing,
	} {
		if _, err := tx.ExecContext(ctx, `INSERT INTO counters (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, v); err != nil {
			return fmt.Errorf("queue: write counters: %w", err)
		}
	}
	return nil
}

// txState is what one write transaction knows about capacity.
type txState struct {
	tx      *sql.Tx
	cap     Capacity
	c       counters
	loaded  bool
	changed bool
	// dropped records of this transaction, per stream: seqs, for the log line.
	dropped map[string][]int64
	freed   int64 // delivered records deleted to make room
}

func (s *txState) load(ctx context.Context) error {
	if s.loaded {
		return nil
	}
	c, err := readCounters(ctx, s.tx)
	if err != nil {
		return err
	}
	s.c, s.loaded = c, true
	return nil
}

// over reports whether adding a record of size bytes would exceed the limits, optionally
// with slack (a fraction of each limit kept free).
func (s *txState) over(size int64, slack float64) bool {
	if m := s.cap.MaxRecords; m > 0 && float64(s.c.Rows+1) > float64(m)*(1-slack) {
		return true
	}
	if m := s.cap.MaxBytes; m > 0 && float64(s.c.Bytes+size) > float64(m)*(1-slack) {
		return true
	}
	return false
}

func (s *txState) capped() bool { return s.cap.MaxRecords > 0 || s.cap.MaxBytes > 0 }

// deleteRows runs a DELETE ... RETURNING stream, seq, stored size and accounts for it.
func (s *txState) deleteRows(ctx context.Context, q string, args ...any) (n int64, err error) {
	rows, err := s.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var stream string
		var seq, size int64
		if err := rows.Scan(&stream, &seq, &size); err != nil {
			return n, err
		}
		n++
		s.c.Rows--
		s.c.Bytes -= size + rowOverhead
		if s.dropped != nil {
			s.dropped[stream] = append(s.dropped[stream], seq)
		}
	}
	if n > 0 {
		s.changed = true
	}
	return n, rows.Err()
}

const returningSize = ` RETURNING stream, seq, length(payload) + length(CAST(topic AS BLOB))`

// makeRoom frees space for a record of size bytes: first delivered records (oldest delivery
// first, some slack at once), then, by policy, the oldest undelivered records. It reports
// whether the record fits.
func (s *txState) makeRoom(ctx context.Context, size int64) (bool, error) {
	if !s.capped() || !s.over(size, 0) {
		return true, nil
	}
	for s.over(size, freeSlack) {
		chunk := int64(64)
		if m := s.cap.MaxRecords; m > 0 {
			chunk = max(chunk, int64(float64(m)*freeSlack))
		}
		n, err := s.deleteRows(ctx, `DELETE FROM outbox WHERE n IN (SELECT n FROM outbox INDEXED BY outbox_delivered
			WHERE delivered_at IS NOT NULL ORDER BY delivered_at LIMIT ?)`+returningSize, chunk)
		if err != nil {
			return false, fmt.Errorf("queue: free delivered records: %w", err)
		}
		s.freed += n
		if n == 0 {
			break
		}
	}
	if !s.over(size, 0) {
		return true, nil
	}
	if s.cap.MaxBytes > 0 && size > s.cap.MaxBytes {
		return false, nil // larger than the whole budget: dropping everything would not help
	}
	if s.cap.OnFull != OnFullDropOldest {
		return false, nil
	}
	if s.dropped == nil {
		s.dropped = make(map[string][]int64)
	}
	for s.over(size, 0) {
		n, err := s.deleteRows(ctx, `DELETE FROM outbox WHERE n IN (SELECT n FROM outbox INDEXED BY outbox_pending
			WHERE delivered_at IS NULL ORDER BY n LIMIT 1)`+returningSize)
		if err != nil {
			return false, fmt.Errorf("queue: drop oldest record: %w", err)
		}
		if n == 0 {
			return false, nil
		}
		s.c.DroppedOldest += n
	}
	return true, nil
}

// droppedSummary renders dropped seqs per stream as "passage:1-3,7 event:2" for a log line.
func droppedSummary(m map[string][]int64) string {
	streams := make([]string, 0, len(m))
	for s := range m {
		streams = append(streams, s)
	}
	sort.Strings(streams)
	var parts []string
	for _, s := range streams {
		parts = append(parts, s+":"+seqRanges(m[s]))
	}
	return strings.Join(parts, " ")
}

func seqRanges(seqs []int64) string {
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	var b strings.Builder
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if i == j {
			fmt.Fprintf(&b, "%d", seqs[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", seqs[i], seqs[j])
		}
		i = j + 1
	}
	return b.String()
}

// notice is the payload of a queue_loss record.
type notice struct {
	Kind          string `json:"kind"`
	ID            string `json:"id"`
	Seq           int64  `json:"seq"`
	TS            string `json:"ts"`
	Lost          int64  `json:"lost"` // since the previous notice
	DroppedOldest int64  `json:"dropped_oldest"`
	RejectedFull  int64  `json:"rejected_full"`
	FailedWrites  int64  `json:"failed_writes"`
	Quarantined   int64  `json:"quarantined"` // pending records that could not be decoded (kept aside, never sent)
	Abandoned     int64  `json:"abandoned"`   // appends whose caller gave up before they were written
	// Missing counts seqs the database lost although they were used: found behind the
	// high-water mark at a start (a damaged WAL, an emptied or replaced file) or unreadable
	// when the database was salvaged. Some may have been delivered before.
	Missing int64 `json:"missing"`
	// MissingRanges names the missing seqs found since the previous notice, per stream.
	MissingRanges []SeqRange `json:"missing_ranges,omitempty"`
}

func noticePayload(seq int64, id string, at time.Time, c counters, missing []SeqRange) ([]byte, error) {
	return json.Marshal(notice{
		Kind: "queue_loss", ID: id, Seq: seq, TS: at.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Lost: c.lost() - c.Reported, DroppedOldest: c.DroppedOldest, RejectedFull: c.RejectedFull, FailedWrites: c.FailedWrites,
		Quarantined: c.Quarantined, Abandoned: c.Abandoned, Missing: c.Missing, MissingRanges: missing,
	})
}

// triggerPurge asks the purge loop to run now.
func (o *Outbox) triggerPurge() {
	select {
	case o.purgeNow <- struct{}{}:
	default:
	}
}

// purgeLoop deletes delivered records older than the retention, every purgeInterval, in
// transactions of at most purgeChunk rows, until Close.
func (o *Outbox) purgeLoop() {
	t := time.NewTicker(purgeInterval)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
		case <-o.purgeNow:
		}
		o.capMu.Lock()
		set := o.capSet
		o.capMu.Unlock()
		for set {
			r := &writeReq{kind: opPurge, ctx: context.Background(), done: make(chan struct{})}
			if err := o.submit(context.Background(), r); err != nil {
				return // closed
			}
			if r.err != nil {
				o.log.Warn("queue: purging delivered records failed", "err", r.err)
				break
			}
			if r.purged < int64(purgeChunk) {
				break
			}
		}
	}
}
