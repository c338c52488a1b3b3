package queue

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"maps"
	"os"
	"sort"
	"strconv"
	"sync/atomic"
)

// The high-water mark: per stream, the highest seq the outbox has committed, kept outside the
// database in a small file beside it (<path>.hwm). SQLite cannot tell that it lost committed
// transactions: a WAL frame whose checksum fails ends the replay there, silently, and an
// emptied or replaced file looks like a new queue. The mark can: at Open, a stream whose
// last seq in the database is below its mark lost records; the outbox continues after the
// mark (a seq is never used twice), counts the missing records, logs them at ERROR and
// reports them upstream in a queue_loss notice (missing_ranges).
//
// When it is written: after every commit that used seqs, once the commit returned (so the
// mark is never ahead of what was committed), with one pwrite of one 4 KiB slot and no
// fsync; the file is fsynced at most every Options.MarkSync (default 1 s) and at Close.
// A SIGKILL keeps everything written (the page cache survives), so the mark is exact; a power
// cut may leave it up to MarkSync behind (it is then behind, never ahead, for records committed
// with synchronous=FULL: a missed detection, never a false one).
//
// Format: two slots of markSlot bytes, written alternately, so that a torn write leaves the
// other intact. A slot is a header line "SNTQHWM1 <generation, 16 hex> <body length, 8 hex>
// <CRC-32 of the body, 8 hex>\n" and a body of lines `"<stream>" <seq>\n` (Go-quoted stream,
// sorted), padded with NUL bytes. The valid slot with the highest generation counts.
//
// With the record chain (docs/records.md) a line also holds the hash of the record at that
// seq, in lower-case hex: `"<stream>" <seq> <hash>`. After a loss behind the mark the stream's
// chain continues from that hash, so the next record links to the last one stored before the
// loss (the verifier sees a gap, not a broken link). A line without it (a mark written
// before the chain, or by an unchained outbox) is read as before.

const (
	markSlot    = 4096
	markMagic   = "SNTQHWM1"
	markHdrSize = len(markMagic) + 1 + 16 + 1 + 8 + 1 + 8 + 1
)

// markPathOf is where the mark of the database at path lives.
func markPathOf(path string) string { return path + ".hwm" }

// errMarkFull: the streams do not fit one slot (more than ~40 chained streams).
var errMarkFull = errors.New("queue: the high-water mark does not fit its slot (too many streams)")

// encodeSlot renders one slot of generation gen into buf (reused: markSlot bytes).
func encodeSlot(buf []byte, gen uint64, seqs map[string]int64, hashes map[string][]byte, streams []string) ([]byte, []string, error) {
	streams = streams[:0]
	for s := range seqs {
		streams = append(streams, s)
	}
	sort.Strings(streams)
	if cap(buf) < markSlot {
		buf = make([]byte, markSlot)
	}
	buf = buf[:markHdrSize]
	for _, s := range streams {
		buf = strconv.AppendQuote(buf, s)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, seqs[s], 10)
		if h := hashes[s]; len(h) > 0 {
			buf = hex.AppendEncode(append(buf, ' '), h)
		}
		buf = append(buf, '\n')
	}
	if len(buf) > markSlot {
		return buf, streams, errMarkFull
	}
	body := buf[markHdrSize:]
	h := buf[:0]
	h = append(h, markMagic...)
	h = appendHex(append(h, ' '), gen, 16)
	h = appendHex(append(h, ' '), uint64(len(body)), 8)
	h = appendHex(append(h, ' '), uint64(crc32.ChecksumIEEE(body)), 8)
	_ = append(h, '\n')
	n := len(buf)
	buf = buf[:markSlot]
	clear(buf[n:])
	return buf, streams, nil
}

// appendHex appends v in lower-case hex, zero-padded to width digits.
func appendHex(b []byte, v uint64, width int) []byte {
	const digits = "0123456789abcdef"
	for i := width - 1; i >= 0; i-- {
		b = append(b, digits[(v>>(4*uint(i)))&0xf])
	}
	return b
}

// parseSlot reads one slot; ok is false when it is not a valid one.
func parseSlot(b []byte) (seqs map[string]int64, hashes map[string][]byte, gen uint64, ok bool) {
	if len(b) < markHdrSize || string(b[:len(markMagic)]) != markMagic || b[markHdrSize-1] != '\n' {
		return nil, nil, 0, false
	}
	var n, sum uint32
	if _, err := fmt.Sscanf(string(b[len(markMagic):markHdrSize-1]), " %016x %08x %08x", &gen, &n, &sum); err != nil {
		return nil, nil, 0, false
	}
	if int(n) > len(b)-markHdrSize {
		return nil, nil, 0, false
	}
	body := b[markHdrSize : markHdrSize+int(n)]
	if crc32.ChecksumIEEE(body) != sum {
		return nil, nil, 0, false
	}
	seqs, hashes = map[string]int64{}, map[string][]byte{}
	for _, line := range bytes.Split(body, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		q, err := strconv.QuotedPrefix(string(line))
		if err != nil {
			return nil, nil, 0, false
		}
		s, err := strconv.Unquote(q)
		if err != nil || len(line) < len(q)+2 || line[len(q)] != ' ' {
			return nil, nil, 0, false
		}
		num, hx, withHash := bytes.Cut(line[len(q)+1:], []byte(" "))
		v, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil || v < 0 {
			return nil, nil, 0, false
		}
		seqs[s] = v
		if withHash {
			h, err := hex.DecodeString(string(hx))
			if err != nil || len(h) == 0 {
				return nil, nil, 0, false
			}
			hashes[s] = h
		}
	}
	return seqs, hashes, gen, true
}

// markState is what readMark found.
type markState int

const (
	markAbsent     markState = iota // no file: a new queue, or one from before the mark
	markValid                       // a valid slot was read
	markUnreadable                  // a file without a valid slot (damaged)
)

// markRead is what readMark found: per stream the seq, and the hash of the record at it
// when the mark holds one.
type markRead struct {
	seqs   map[string]int64
	hashes map[string][]byte
	gen    uint64
	state  markState
}

// readMark reads the mark at path. It never creates it.
func readMark(path string) (markRead, error) {
	m := markRead{seqs: map[string]int64{}, hashes: map[string][]byte{}}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return m, nil
	case err != nil:
		return markRead{}, fmt.Errorf("queue: high-water mark %s: %w", path, err)
	case !fi.Mode().IsRegular():
		// Never read (a FIFO would block) nor written: it is not the mark, and it is left alone.
		return markRead{}, fmt.Errorf("queue: high-water mark %s is not a regular file (mode %v); it was left untouched: move it aside (the queue writes its mark there) and start again: %w",
			path, fi.Mode(), ErrInvalid)
	case fi.Size() > 2*markSlot:
		m.state = markUnreadable // never read a huge file
		return m, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return markRead{}, fmt.Errorf("queue: high-water mark %s: %w", path, err)
	}
	m.state = markUnreadable
	for off := 0; off < len(b); off += markSlot {
		s, h, g, ok := parseSlot(b[off:min(len(b), off+markSlot)])
		if ok && (m.state != markValid || g > m.gen) {
			m.seqs, m.hashes, m.gen, m.state = s, h, g, markValid
		}
	}
	return m, nil
}

// markFile is the open mark of an Outbox. advance and write run on the writer goroutine
// (and in Open before it starts); sync may run on another.
type markFile struct {
	path   string
	f      *os.File
	gen    uint64
	seqs   map[string]int64
	hashes map[string][]byte // the hash of the record at seqs[stream], for chained streams
	dirty  atomic.Bool       // written since the last sync
	buf    []byte            // the slot being written, reused
	names  []string          // its streams, reused
	// noSync leaves syncing to the page cache (benchmarks: the cost of the write alone).
	noSync bool
}

// createMark opens (creating) the mark at path, writes seqs (and the hashes of the records
// at them, where known) to both slots with a generation after gen, and syncs it.
func createMark(path string, gen uint64, seqs map[string]int64, hashes map[string][]byte) (*markFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("queue: high-water mark %s: %w", path, err)
	}
	m := &markFile{path: path, f: f, gen: gen, seqs: maps.Clone(seqs), hashes: map[string][]byte{}}
	if m.seqs == nil {
		m.seqs = map[string]int64{}
	}
	for s, h := range hashes {
		if _, ok := m.seqs[s]; ok && len(h) > 0 {
			m.hashes[s] = h
		}
	}
	// Both slots hold the same generation at first, so that later writes never extend the file.
	m.gen++
	b, _, err := encodeSlot(nil, m.gen, m.seqs, m.hashes, nil)
	if err == nil {
		_, err = f.WriteAt(append(b, b...), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("queue: high-water mark %s: %w", path, err)
	}
	m.dirty.Store(true)
	if err := m.sync(); err != nil {
		f.Close()
		return nil, err
	}
	return m, nil
}

// advance raises the mark of each stream in seqs to its seq, with the hash of the record at
// it from hashes (none: an unchained record), and writes the mark if one rose.
func (m *markFile) advance(seqs map[string]int64, hashes map[string][]byte) error {
	rose := false
	for s, v := range seqs {
		if v > m.seqs[s] {
			m.seqs[s] = v
			if h := hashes[s]; len(h) > 0 {
				m.hashes[s] = h
			} else {
				delete(m.hashes, s)
			}
			rose = true
		}
	}
	if !rose {
		return nil
	}
	return m.write()
}

// write puts the mark into the next slot.
func (m *markFile) write() error {
	var err error
	if m.buf, m.names, err = encodeSlot(m.buf, m.gen+1, m.seqs, m.hashes, m.names); err != nil {
		return err
	}
	if _, err := m.f.WriteAt(m.buf, int64((m.gen+1)%2)*markSlot); err != nil {
		return fmt.Errorf("queue: high-water mark %s: %w", m.path, err)
	}
	m.gen++
	m.dirty.Store(true)
	return nil
}

// sync flushes the mark to disk if it was written since the last sync.
func (m *markFile) sync() error {
	if m.noSync || !m.dirty.Swap(false) {
		return nil
	}
	if err := m.f.Sync(); err != nil {
		m.dirty.Store(true)
		return fmt.Errorf("queue: high-water mark %s: %w", m.path, err)
	}
	return nil
}

func (m *markFile) close() error {
	err := m.sync()
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}
