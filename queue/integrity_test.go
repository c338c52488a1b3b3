package queue

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Issue #11, the queue half: outside reads, damaged files, lost records. Each test names its
// finding.

// holdsLock reports whether this process holds a POSIX lock on the file at path
// (/proc/locks, matched by inode).
func holdsLock(t *testing.T, path string) bool {
	t.Helper()
	var st struct{ ino uint64 }
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st.ino = inodeOf(fi)
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Skipf("no /proc/locks: %v", err)
	}
	pid := strconv.Itoa(os.Getpid())
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		// 1: POSIX  ADVISORY  READ 1234 08:01:5678 1073741824 1073742335
		if len(f) < 6 || f[1] != "POSIX" || f[4] != pid {
			continue
		}
		dev := strings.Split(f[5], ":")
		if ino, err := strconv.ParseUint(dev[len(dev)-1], 10, 64); err == nil && ino == st.ino {
			return true
		}
	}
	return false
}

// deletedFiles lists this process's open descriptors of deleted files under dir.
func deletedFiles(t *testing.T, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var out []string
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(l, dir) && strings.HasSuffix(l, "(deleted)") {
			out = append(out, l)
		}
	}
	return out
}

// crashCopy copies the database at path, its WAL and its high-water mark into dir, as a
// SIGKILL would leave them (the shared-memory index is rebuilt from the WAL), and returns
// the copy's path.
func crashCopy(t *testing.T, path, dir string) string {
	t.Helper()
	dst := filepath.Join(dir, filepath.Base(path))
	for _, suffix := range []string{"", "-wal", ".hwm"} {
		b, err := os.ReadFile(path + suffix)
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func appendN(t *testing.T, o *Outbox, stream string, n int) []Entry {
	t.Helper()
	var es []Entry
	for range n {
		e, err := o.Append(context.Background(), stream, "sentinel/test/"+stream, passagePayload)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	return es
}

func scanAll(t *testing.T, o *Outbox) ([]Entry, ScanResult) {
	t.Helper()
	var es []Entry
	res, err := o.ScanEntries(context.Background(), ScanOptions{}, func(e Entry) error { es = append(es, e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return es, res
}

// TestNoSecondOpenDropsLocks is finding 1 at the queue level: a read-only look at the
// database from the process that holds it (the agent's start-up scan used OpenReader) must
// not drop the process's POSIX locks, so that an outside sqlite3 sees it is not alone and
// leaves the live WAL in place; records committed after the outside read survive a crash.
func TestNoSecondOpenDropsLocks(t *testing.T) {
	o, path := openTemp(t, Options{Synchronous: "NORMAL"})
	appendN(t, o, "passage", 5)
	if !holdsLock(t, path) {
		t.Fatal("an open outbox holds no lock on its database")
	}
	r, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Entries(context.Background(), func(Entry) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !holdsLock(t, path) {
		t.Fatal("after OpenReader and Close in the same process, the process holds no lock on the database: an outside sqlite3 would think it is alone and delete the WAL")
	}
	if sqlite3, err := exec.LookPath("sqlite3"); err == nil {
		if out, err := exec.Command(sqlite3, path, "select count(*) from outbox").CombinedOutput(); err != nil {
			t.Fatalf("sqlite3: %v\n%s", err, out)
		}
		if _, err := os.Stat(path + "-wal"); err != nil {
			t.Fatalf("an outside sqlite3 deleted the live WAL: %v", err)
		}
		if d := deletedFiles(t, filepath.Dir(path)); len(d) > 0 {
			t.Fatalf("the outbox writes to deleted files: %v", d)
		}
	}
	appendN(t, o, "passage", 10)
	c, err := Open(crashCopy(t, path, t.TempDir()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	es, _ := scanAll(t, c)
	if len(es) != 15 || es[14].Seq != 15 {
		t.Fatalf("the crash copy holds %d records, want 15", len(es))
	}
}

// TestOpenOncePerProcess: a second Open of the same file (however spelled) is refused while
// the first is open; OpenReader shares the open Outbox's pool; after Close it opens again.
func TestOpenOncePerProcess(t *testing.T) {
	o, path := openTemp(t, Options{})
	dir := filepath.Dir(path)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, p := range []string{path, "queue.db", "./queue.db", filepath.Join(link, "queue.db"), dir + "//queue.db"} {
		if o2, err := Open(p, Options{}); !errors.Is(err, ErrInUse) {
			if o2 != nil {
				o2.Close()
			}
			t.Fatalf("second Open(%s): %v, want ErrInUse", p, err)
		}
	}
	r, err := OpenReader(filepath.Join(link, "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	if r.shared != o || r.db != o.db {
		t.Fatal("OpenReader in the process that holds the outbox opened its own pool")
	}
	r.Close()
	mustAppend(t, o, "s") // the shared pool is still open
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o2, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	o2.Close()
}

// damagedOutbox makes a real outbox of n passage records (closed, so all is in the main
// file), then overwrites the 4 KiB page holding the record of seq victim with random bytes.
func damagedOutbox(t *testing.T, n int, victim int64) (path string, page int) {
	t.Helper()
	o, path := openTemp(t, Options{Synchronous: "NORMAL"})
	es := appendN(t, o, "passage", n)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	uid := uuid.MustParse(es[victim-1].ID)
	off := bytes.Index(b, uid[:])
	if off < 0 {
		t.Fatal("the victim's id is not in the file")
	}
	page = off / 4096
	junk := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	copy(b[page*4096:], junk)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, page
}

// TestOpenRefusesCorruptPage is finding 5: a database with one damaged page is refused with
// ErrCorrupt, a message naming the file and salvage, and the file is not modified.
func TestOpenRefusesCorruptPage(t *testing.T) {
	path, _ := damagedOutbox(t, 300, 150)
	before, _ := os.ReadFile(path)
	o, err := Open(path, Options{})
	if err == nil {
		o.Close()
		t.Fatal("Open of a damaged database succeeded")
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "sentinel queue salvage") {
		t.Fatalf("err = %v; want ErrCorrupt naming the file and `sentinel queue salvage`", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatalf("the damaged file was modified (%d -> %d bytes)", len(before), len(after))
	}
	if _, err := os.Stat(markPathOf(path) + ".new"); err == nil {
		t.Fatal("unexpected file")
	}
	// The registry is released: the refusal does not leave the path held.
	if holder(path) != nil {
		t.Fatal("a refused Open still holds the path")
	}
}

// TestOpenCheckBudget: when quick_check runs out of its budget, Open still reads every page
// (a damaged page is refused), and on a sound file it starts and finishes quick_check in the
// background.
func TestOpenCheckBudget(t *testing.T) {
	path, _ := damagedOutbox(t, 300, 150)
	// A quick_check that takes a while and finds nothing (it answers ok after counting to
	// 3 million), so the budget runs out first: the page walk must find the damage.
	old := quickCheckSQL
	quickCheckSQL = `WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000000) SELECT 'ok' FROM c WHERE i = 3000000`
	t.Cleanup(func() { quickCheckSQL = old })
	before, _ := os.ReadFile(path)
	log, logs := testLogger(t)
	if o, err := Open(path, Options{CheckBudget: time.Millisecond, Logger: log}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "table outbox") {
		if o != nil {
			o.Close()
		}
		t.Fatalf("damaged file, budget exhausted: %v, want ErrCorrupt", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("the damaged file was modified")
	}
	if strings.Contains(logs.String(), "goes on in the background") {
		t.Fatalf("a damaged file was started:\n%s", logs)
	}

	o, sound := openTemp(t, Options{})
	appendN(t, o, "passage", 50)
	o.Close()
	o, err := Open(sound, Options{CheckBudget: time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	<-o.checkDone
	o.Close()
	if !strings.Contains(logs.String(), "quick_check goes on in the background") || !strings.Contains(logs.String(), "background start-up check is ok") {
		t.Fatalf("logs:\n%s", logs)
	}
}

// TestSalvageDamagedPage is finding 5's salvage: every record outside the damaged page is
// copied to a new database, the lost ones are named by stream and seq and recorded so the
// agent reports them, the damaged file is not modified, and an existing target is refused.
func TestSalvageDamagedPage(t *testing.T) {
	path, _ := damagedOutbox(t, 300, 150)
	before, _ := os.ReadFile(path)
	dst := filepath.Join(t.TempDir(), "new.db")
	rep, err := Salvage(context.Background(), path, dst)
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("salvage modified the damaged file")
	}
	var lost int64
	found := false
	for _, g := range rep.Lost {
		lost += g.Last - g.First + 1
		found = found || (g.Stream == "passage" && g.First <= 150 && 150 <= g.Last)
	}
	t.Logf("copied %d, lost %v, unreadable %v, warnings %v", rep.Records, rep.Lost, rep.Unreadable, rep.Warnings)
	if !found || rep.Records+lost != 300 || rep.Records < 250 || len(rep.Unreadable) != 1 {
		t.Fatalf("salvage copied %d and lost %v (unreadable %v); want the records of one page lost, seq 150 among them, the other ~290 copied",
			rep.Records, rep.Lost, rep.Unreadable)
	}
	if rep.Streams["passage"] != 300 || rep.Pending != rep.Records || rep.Undecodable != 0 {
		t.Fatalf("report %+v", rep)
	}
	o, err := Open(dst, Options{})
	if err != nil {
		t.Fatalf("the salvaged database does not open: %v", err)
	}
	defer o.Close()
	if err := o.SetCapacity(Capacity{NoticeTopic: testNoticeTopic}); err != nil {
		t.Fatal(err)
	}
	es, res := scanAll(t, o)
	if int64(len(es)) != rep.Records || res.Damaged != 0 {
		t.Fatalf("the new database holds %d readable records (%d damaged), want %d", len(es), res.Damaged, rep.Records)
	}
	if e := mustAppend(t, o, "passage"); e.Seq != 301 {
		t.Fatalf("next seq %d, want 301", e.Seq)
	}
	waitUntil(t, 5e9, "a queue_loss notice", func() bool { return len(pendingNotices(t, o)) > 0 })
	n := pendingNotices(t, o)[0]
	if n.Missing != lost || len(n.MissingRanges) != len(rep.Lost) || n.MissingRanges[0].Cause != causeUnreadable {
		t.Fatalf("notice %+v, want the %d unreadable records named", n, lost)
	}
	if _, err := Salvage(context.Background(), path, dst); !errors.Is(err, ErrInvalid) {
		t.Fatalf("salvage onto an existing database: %v, want a refusal", err)
	}
}

// TestScanEntriesSkipsDamagedRows is finding 7: one damaged row (here a delivered one) does
// not stop a scan: every other row is given out, and the damaged one is counted.
func TestScanEntriesSkipsDamagedRows(t *testing.T) {
	o, path := openTemp(t, Options{})
	ctx := context.Background()
	es := appendN(t, o, "audit", 8)
	if err := o.MarkDelivered(ctx, es[2].ID, es[3].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := o.db.ExecContext(ctx, `UPDATE outbox SET enc = 1, payload = x'fffefd' WHERE stream = 'audit' AND seq = 4`); err != nil {
		t.Fatal(err)
	}
	check := func(what string, scan func(func(Entry) error) (ScanResult, error)) {
		t.Helper()
		var seqs []int64
		res, err := scan(func(e Entry) error { seqs = append(seqs, e.Seq); return nil })
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if fmt.Sprint(seqs) != "[1 2 3 5 6 7 8]" || res.Entries != 7 || res.Damaged != 1 || !errors.Is(res.FirstDamage, ErrCorrupt) ||
			!strings.Contains(res.FirstDamage.Error(), "audit seq 4") {
			t.Fatalf("%s: seqs %v, result %+v; want every row but seq 4, and seq 4 counted", what, seqs, res)
		}
	}
	check("Outbox.ScanEntries", func(f func(Entry) error) (ScanResult, error) { return o.ScanEntries(ctx, ScanOptions{}, f) })
	r, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	check("shared Reader.ScanEntries", func(f func(Entry) error) (ScanResult, error) { return r.ScanEntries(ctx, ScanOptions{}, f) })
	// Entries goes on past the row too, and then says so.
	var n int
	err = r.Entries(ctx, func(Entry) error { n++; return nil })
	if n != 7 || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Entries saw %d rows, err %v; want 7 and ErrCorrupt", n, err)
	}
	r.Close()
	o.Close()
	r, err = OpenReader(path) // another process's reader: its own pool
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	check("Reader.ScanEntries", func(f func(Entry) error) (ScanResult, error) { return r.ScanEntries(ctx, ScanOptions{}, f) })
}

// TestScanEntriesPastDamagedPage: a page SQLite cannot read is skipped with its rows; the
// rows on either side are read.
func TestScanEntriesPastDamagedPage(t *testing.T) {
	path, _ := damagedOutbox(t, 300, 150)
	r, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var seqs []int64
	res, err := r.ScanEntries(context.Background(), ScanOptions{}, func(e Entry) error { seqs = append(seqs, e.Seq); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if res.Damaged != 1 || len(seqs) < 250 || seqs[0] != 1 || seqs[len(seqs)-1] != 300 || slicesContains(seqs, 150) {
		t.Fatalf("%d entries (%v ... %v), result %+v; want all but one page's, 1 and 300 in, 150 out", len(seqs), seqs[:3], seqs[len(seqs)-3:], res)
	}
}

func slicesContains(s []int64, v int64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestScanEntriesSnapshot: records committed after Snapshot was called are not in the scan.
func TestScanEntriesSnapshot(t *testing.T) {
	o, _ := openTemp(t, Options{})
	appendN(t, o, "passage", 3)
	var late Entry
	var seen []string
	res, err := o.ScanEntries(context.Background(), ScanOptions{Snapshot: func() { late = mustAppend(t, o, "passage") }},
		func(e Entry) error { seen = append(seen, e.ID); return nil })
	if err != nil || res.Entries != 3 || len(seen) != 3 || late.Seq != 4 {
		t.Fatalf("scan saw %d entries (%v), late seq %d; want the 3 committed before the snapshot", len(seen), err, late.Seq)
	}
	if es, _ := scanAll(t, o); len(es) != 4 {
		t.Fatalf("a new scan sees %d entries, want 4", len(es))
	}
	// Snapshot is called even when the scan cannot start.
	o.Close()
	called := false
	if _, err := o.ScanEntries(context.Background(), ScanOptions{Snapshot: func() { called = true }}, nil); !errors.Is(err, ErrClosed) || !called {
		t.Fatalf("after Close: %v, Snapshot called %v", err, called)
	}
}

// damageWALFrame overwrites 16 bytes inside the middle frame of the WAL at path.
func damageWALFrame(t *testing.T, wal string) (frames int) {
	t.Helper()
	b, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	ps := int(binary.BigEndian.Uint32(b[8:12]))
	frames = (len(b) - 32) / (24 + ps)
	if frames < 10 {
		t.Fatalf("the WAL has %d frames: too few", frames)
	}
	off := 32 + (frames/2)*(24+ps) + 24 + 200
	copy(b[off:off+16], bytes.Repeat([]byte{0xA5}, 16))
	if err := os.WriteFile(wal, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return frames
}

// TestMarkDamagedWAL is finding 6: a crash (SIGKILL: the WAL not checkpointed, the mark
// written) and then 16 bytes overwritten in a middle WAL frame: SQLite's replay stops at
// that frame and silently drops the later commits. The outbox sees it behind its mark:
// the next seq continues after the mark, the loss is counted, logged at ERROR and named in
// a queue_loss notice.
func TestMarkDamagedWAL(t *testing.T) {
	o, path := openTemp(t, Options{})
	appendN(t, o, "passage", 40)
	snap := crashCopy(t, path, t.TempDir())
	damageWALFrame(t, snap+"-wal")

	log, logs := testLogger(t)
	c, err := Open(snap, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetCapacity(Capacity{NoticeTopic: testNoticeTopic}); err != nil {
		t.Fatal(err)
	}
	es, _ := scanAll(t, c)
	var kept int64
	for _, e := range es {
		if e.Stream == "passage" {
			kept++
		}
	}
	if kept >= 40 {
		t.Fatalf("the damaged WAL kept all %d records: the damage did not take", kept)
	}
	if e := mustAppend(t, c, "passage"); e.Seq != 41 {
		t.Fatalf("the next passage has seq %d, want 41: seqs %d-40 would be used twice", e.Seq, kept+1)
	}
	waitUntil(t, 5e9, "a queue_loss notice", func() bool { return len(pendingNotices(t, c)) > 0 })
	n := pendingNotices(t, c)[0]
	want := SeqRange{Stream: "passage", First: kept + 1, Last: 40, Cause: causeBehindMark}
	if n.Missing != 40-kept || len(n.MissingRanges) != 1 || n.MissingRanges[0] != want || n.Lost != 40-kept {
		t.Fatalf("notice %+v, want %d missing, range %+v", n, 40-kept, want)
	}
	if st, _ := c.Stats(context.Background()); st.Missing != 40-kept || st.Dropped != 40-kept {
		t.Fatalf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "behind its high-water mark") ||
		!strings.Contains(logs.String(), fmt.Sprintf("first_seq=%d last_seq=40", kept+1)) {
		t.Fatalf("no ERROR line naming the lost seqs:\n%s", logs)
	}
}

// TestMarkNoFalseLoss: a crash without damage, a clean stop, and a database from before
// the mark (no mark file) report nothing lost.
func TestMarkNoFalseLoss(t *testing.T) {
	o, path := openTemp(t, Options{})
	appendN(t, o, "passage", 20)
	mustAppend(t, o, "event")
	snap := crashCopy(t, path, t.TempDir())
	for _, p := range []string{snap, path} {
		if p == path {
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
		}
		log, logs := testLogger(t)
		c, err := Open(p, Options{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		st, _ := c.Stats(context.Background())
		e := mustAppend(t, c, "passage")
		c.Close()
		if st.Missing != 0 || e.Seq != 21 || strings.Contains(logs.String(), "ERROR") {
			t.Fatalf("%s: missing %d, next seq %d, log:\n%s", p, st.Missing, e.Seq, logs)
		}
	}
	if err := os.Remove(markPathOf(path)); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st, _ := c.Stats(context.Background()); st.Missing != 0 {
		t.Fatalf("without a mark: missing %d", st.Missing)
	}
	if m, _ := readMark(markPathOf(path)); m.state != markValid {
		t.Fatal("Open did not write a mark")
	}
}

// TestMarkEmptyOrMissingDatabase is finding 6's second half: a 0-byte (or deleted)
// database beside its mark is a loss, not a new queue: seqs continue after the mark.
func TestMarkEmptyOrMissingDatabase(t *testing.T) {
	for _, how := range []string{"emptied", "deleted"} {
		t.Run(how, func(t *testing.T) {
			o, path := openTemp(t, Options{})
			appendN(t, o, "passage", 5)
			mustAppend(t, o, "event")
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			var err error
			if how == "emptied" {
				err = os.Truncate(path, 0)
			} else {
				err = os.Remove(path)
			}
			if err != nil {
				t.Fatal(err)
			}
			log, logs := testLogger(t)
			c, err := Open(path, Options{Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.SetCapacity(Capacity{NoticeTopic: testNoticeTopic}); err != nil {
				t.Fatal(err)
			}
			if e := mustAppend(t, c, "passage"); e.Seq != 6 {
				t.Fatalf("next seq %d, want 6", e.Seq)
			}
			waitUntil(t, 5e9, "a queue_loss notice", func() bool { return len(pendingNotices(t, c)) > 0 })
			n := pendingNotices(t, c)[0]
			got, _ := json.Marshal(n.MissingRanges)
			if n.Missing != 6 || string(got) != `[{"stream":"event","first_seq":1,"last_seq":1,"cause":"behind_mark"},{"stream":"passage","first_seq":1,"last_seq":5,"cause":"behind_mark"}]` {
				t.Fatalf("notice %+v (%s)", n, got)
			}
			if !strings.Contains(logs.String(), "level=ERROR") {
				t.Fatalf("not logged at ERROR:\n%s", logs)
			}
		})
	}
	// Without a mark a 0-byte file is initialised, with a warning (not INFO).
	path := filepath.Join(t.TempDir(), "queue.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	log, logs := testLogger(t)
	c, err := Open(path, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "empty (0 bytes)") {
		t.Fatalf("a 0-byte database initialised without a warning:\n%s", logs)
	}
}

// TestMarkSlots: the mark survives a torn write of either slot, and a damaged file is
// reported as unreadable (never as a loss).
func TestMarkSlots(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.hwm")
	h7, h9 := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 32)
	m, err := createMark(path, 0, map[string]int64{"passage": 7, `odd "name"` + "\n": 1}, map[string][]byte{"passage": h7})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.advance(map[string]int64{"passage": 9, "event": 2}, map[string][]byte{"passage": h9}); err != nil {
		t.Fatal(err)
	}
	if err := m.close(); err != nil {
		t.Fatal(err)
	}
	mr, err := readMark(path)
	seqs := mr.seqs
	if err != nil || mr.state != markValid || mr.gen != 2 || seqs["passage"] != 9 || seqs["event"] != 2 || seqs[`odd "name"`+"\n"] != 1 ||
		!bytes.Equal(mr.hashes["passage"], h9) || mr.hashes["event"] != nil {
		t.Fatalf("read %+v err %v", mr, err)
	}
	b, _ := os.ReadFile(path)
	for slot := range 2 {
		torn := append([]byte(nil), b...)
		torn[slot*markSlot+markHdrSize+3] ^= 0xff
		if err := os.WriteFile(path, torn, 0o600); err != nil {
			t.Fatal(err)
		}
		mr, _ := readMark(path)
		want, wantHash := int64(9), h9
		if slot == 0 { // slot 0 held generation 2, the newer
			want, wantHash = 7, h7
		}
		if mr.state != markValid || mr.seqs["passage"] != want || !bytes.Equal(mr.hashes["passage"], wantHash) {
			t.Fatalf("slot %d torn: %+v, want passage %d", slot, mr, want)
		}
	}
	if err := os.WriteFile(path, bytes.Repeat([]byte{'x'}, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	if mr, err := readMark(path); mr.state != markUnreadable || err != nil {
		t.Fatalf("garbage mark: state %d err %v", mr.state, err)
	}
}

// readOnlyDir is a directory this process cannot write: a read-only tmpfs for root (who
// ignores permissions), mode 0555 otherwise.
func readOnlyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a read-only tmpfs: %v %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
		return dir
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	return dir
}

// TestOpenUnwritableDirectory is finding 10 (part): a read-only queue directory is reported
// as not writable, with what to do, not as "no such file or directory".
func TestOpenUnwritableDirectory(t *testing.T) {
	path := filepath.Join(readOnlyDir(t), "queue.db")
	o, err := Open(path, Options{})
	if err == nil {
		o.Close()
		t.Fatal("Open in a read-only directory succeeded")
	}
	msg := err.Error()
	if !errors.Is(err, ErrUnwritable) || !strings.Contains(msg, "not writable") || strings.Contains(msg, "no such file") ||
		!strings.Contains(msg, path) || !strings.Contains(msg, "queue.path") {
		t.Fatalf("err = %v; want ErrUnwritable saying the directory is not writable and what to do", err)
	}
	_, err = Open(filepath.Join(t.TempDir(), "missing", "queue.db"), Options{})
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "create it") {
		t.Fatalf("a missing directory: %v", err)
	}
}

// TestSalvageOldSchema: a database of schema version 1 (text ids, no encodings, no
// counters) is salvaged into the current schema.
func TestSalvageOldSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrateStep(context.Background(), db, migrations[0]); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO streams VALUES ('s', 2), ('e', 1)`,
		`INSERT INTO outbox (id, stream, seq, topic, payload, created_at, delivered_at) VALUES
			('11111111-1111-4111-8111-111111111111', 's', 1, 'a/s', '{"seq":1}', 1000, 2000),
			('22222222-2222-4222-8222-222222222222', 's', 2, 'a/s', '{"seq":2}', 1001, NULL),
			('33333333-3333-4333-8333-333333333333', 'e', 1, 'a/e', '{"seq":1}', 1002, NULL)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	dst := filepath.Join(t.TempDir(), "new.db")
	rep, err := Salvage(context.Background(), path, dst)
	if err != nil || rep.Records != 3 || rep.Pending != 2 || len(rep.Unreadable) != 0 || rep.Streams["s"] != 2 {
		t.Fatalf("salvage of a v1 database: %+v, %v", rep, err)
	}
	o, err := Open(dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	p, err := o.Pending(context.Background(), 0)
	if err != nil || len(p) != 2 || p[0].ID != "22222222-2222-4222-8222-222222222222" || p[0].Topic != "a/s" || p[1].Topic != "a/e" || string(p[0].Payload) != `{"seq":2}` {
		t.Fatalf("pending after salvage: %+v, %v", p, err)
	}
	if e := mustAppend(t, o, "s"); e.Seq != 3 {
		t.Fatalf("next seq %d, want 3", e.Seq)
	}
}

// TestSalvageReadsWAL: after a crash, records still only in the WAL are salvaged too, and
// neither the file nor its WAL is written.
func TestSalvageReadsWAL(t *testing.T) {
	o, path := openTemp(t, Options{})
	appendN(t, o, "passage", 20)
	snap := crashCopy(t, path, t.TempDir())
	db0, _ := os.ReadFile(snap)
	wal0, _ := os.ReadFile(snap + "-wal")
	rep, err := Salvage(context.Background(), snap, filepath.Join(t.TempDir(), "new.db"))
	if err != nil || rep.Records != 20 || rep.Streams["passage"] != 20 || len(rep.Warnings) != 0 {
		t.Fatalf("salvage of a crash copy: %+v, %v", rep, err)
	}
	db1, _ := os.ReadFile(snap)
	wal1, _ := os.ReadFile(snap + "-wal")
	if !bytes.Equal(db0, db1) || !bytes.Equal(wal0, wal1) || len(wal0) == 0 {
		t.Fatal("salvage wrote to the database or its WAL")
	}
}

// TestSalvageUnknownStream: salvage never invents a stream. A row whose stream is not in the
// streams table (one damaged byte: passage → passagf, which quick_check does not see), or
// whose stream has no topic, is not copied: it is counted as unreadable, named as lost when the
// (stream, seq) index still names it, and otherwise said in a warning; the new database holds
// only streams the old one had, and every copied pending record has a topic to go to.
func TestSalvageUnknownStream(t *testing.T) {
	tests := []struct {
		name     string
		damage   func(t *testing.T, path string, victim Entry)
		lost     string // the record as named lost, from the index ("": not named)
		streams  string // the streams of the new database
		warnings string // in the warnings
	}{
		{name: "byte flipped in the row", damage: flipStreamByte, lost: "passage", streams: "[passage]", warnings: `stream "passagf" is not in the streams table`},
		{name: "stream renamed, index too", damage: func(t *testing.T, path string, victim Entry) {
			sqlOn(t, path, `PRAGMA foreign_keys = OFF`, `UPDATE outbox SET stream = 'passagf' WHERE n = `+strconv.FormatInt(victim.n, 10))
		}, streams: "[passage]", warnings: `stream "passagf" is not in the streams table`},
		// As an earlier salvage left it: the stream row is the old database's, so it stays
		// (with its seqs), but no record goes to its empty topic.
		{name: "stream without topic", damage: func(t *testing.T, path string, victim Entry) {
			sqlOn(t, path, `INSERT INTO streams (stream, last_seq, topic) VALUES ('passagf', 3, '')`,
				`UPDATE outbox SET stream = 'passagf' WHERE n = `+strconv.FormatInt(victim.n, 10))
		}, lost: "passagf", streams: "[passage passagf]", warnings: `topic "" (stream "passagf")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, path := openTemp(t, Options{})
			appendN(t, o, "passage", 6)
			es, err := o.Pending(context.Background(), 0) // with their insertion numbers
			if err != nil {
				t.Fatal(err)
			}
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, path, es[2])
			dst := filepath.Join(t.TempDir(), "new.db")
			rep, err := Salvage(context.Background(), path, dst)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("report %+v", rep)
			if rep.Records != 5 || len(rep.Unreadable) != 1 || rep.Unreadable[0] != (KeyRange{es[2].n, es[2].n}) {
				t.Fatalf("copied %d, unreadable %v; want 5 copied and row n=%d unreadable", rep.Records, rep.Unreadable, es[2].n)
			}
			if fmt.Sprint(slices.Sorted(maps.Keys(rep.Streams))) != tt.streams || rep.Streams["passage"] != 6 {
				t.Fatalf("streams %v, want %s, passage at 6", rep.Streams, tt.streams)
			}
			wantLost := []SeqRange(nil)
			if tt.lost != "" {
				wantLost = []SeqRange{{Stream: tt.lost, First: 3, Last: 3, Cause: causeUnreadable}}
			}
			if fmt.Sprint(rep.Lost) != fmt.Sprint(wantLost) {
				t.Fatalf("lost %v, want %v", rep.Lost, wantLost)
			}
			if w := strings.Join(rep.Warnings, "\n"); !strings.Contains(w, tt.warnings) {
				t.Fatalf("warnings %q, want %s named", w, tt.warnings)
			}
			n, err := Open(dst, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			var streams []string
			rows, err := n.db.Query(`SELECT stream FROM streams UNION SELECT stream FROM outbox ORDER BY 1`) // every name in use
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var s string
				_ = rows.Scan(&s)
				streams = append(streams, s)
			}
			rows.Close()
			if fmt.Sprint(streams) != tt.streams {
				t.Fatalf("the new database has streams %v, want %s", streams, tt.streams)
			}
			p, err := n.Pending(context.Background(), 0)
			if err != nil || len(p) != 5 {
				t.Fatalf("pending %d, %v; want 5", len(p), err)
			}
			for _, e := range p {
				if e.Topic != "sentinel/test/passage" {
					t.Fatalf("pending %s seq %d has topic %q", e.Stream, e.Seq, e.Topic)
				}
			}
		})
	}
}

// flipStreamByte changes the last byte of victim's stream name in its table row, on disk (the
// row's id is followed by its stream name in the record), as a bad sector would: passage →
// passagf; the (stream, seq) index still says passage.
func flipStreamByte(t *testing.T, path string, victim Entry) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	uid := uuid.MustParse(victim.ID)
	at := bytes.Index(b, append(uid[:], victim.Stream...))
	if at < 0 || bytes.Count(b, uid[:]) != 1 {
		t.Fatalf("the row of %s seq %d is not found once in %s", victim.Stream, victim.Seq, path)
	}
	b[at+len(uid)+len(victim.Stream)-1]++
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// sqlOn runs statements on the database at path, on one connection.
func sqlOn(t *testing.T, path string, qs ...string) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestMarkNotRegularFile: a high-water mark path that is a directory or a FIFO is refused at
// Open with an error saying so (and left alone), not first announced as a damaged mark that
// "is written again" and then failed to open.
func TestMarkNotRegularFile(t *testing.T) {
	for _, kind := range []string{"directory", "fifo"} {
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "queue.db")
			var err error
			if kind == "directory" {
				err = os.Mkdir(markPathOf(path), 0o700)
			} else {
				err = mkfifo(markPathOf(path))
			}
			if errors.Is(err, errors.ErrUnsupported) {
				t.Skip("no FIFOs here")
			}
			if err != nil {
				t.Fatal(err)
			}
			log, logs := testLogger(t)
			o, err := Open(path, Options{Logger: log})
			if err == nil {
				o.Close()
				t.Fatal("Open succeeded with a mark path that is not a regular file")
			}
			if !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), markPathOf(path)) {
				t.Fatalf("Open: %v; want it to name the mark and say it is not a regular file", err)
			}
			if strings.Contains(logs.String(), "written again") {
				t.Fatalf("the log promises to write the mark again:\n%s", logs)
			}
			if fi, err := os.Lstat(markPathOf(path)); err != nil || fi.Mode().IsRegular() {
				t.Fatalf("the mark path was changed: %v, %v", fi, err)
			}
		})
	}
}
