package e2e_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/mqtttest"
)

// The queue's integrity against outside readers, damaged files and lost records (issue #11,
// the queue half), with the built binaries.

// passageSeq matches the agent's passage log line and captures its seq.
var passageSeq = regexp.MustCompile(`msg=passage .*\bseq=(\d+)`)

// scanOne sends one scan and returns the seq of the passage the agent logged for it.
func scanOne(t *testing.T, w *world, ag *proc) int64 {
	t.Helper()
	if _, err := fmt.Fprintln(w.Scan, "HC-GREEN-FRESH"); err != nil {
		t.Fatal(err)
	}
	m := passageSeq.FindStringSubmatch(ag.waitFor(t, passageSeq, 10*time.Second))
	seq, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// storedPassageSeqs reads the passages the database holds (read-only, the agent stopped).
func storedPassageSeqs(t *testing.T, path string) (seqs []int64, ids map[int64]string) {
	t.Helper()
	ids = map[int64]string{}
	for _, e := range stored(t, path) {
		if e.Stream == record.StreamPassage {
			seqs = append(seqs, e.Seq)
			ids[e.Seq] = e.ID
		}
	}
	return seqs, ids
}

// TestE2EQueueOutsideReadKeepsRecords is finding 1 of issue #11: with the daemon running
// (the broker down, so everything stays pending), 5 scans, then the sqlite3 command line
// reads the live database (as docs/queue.md once suggested for quarantined rows), then 10
// more scans and a SIGKILL. Before the fix, the daemon's start-up scan had opened and closed
// the file outside its pool, dropping the process's POSIX locks; the outside sqlite3 thought
// it was alone, checkpointed and deleted the live WAL, and the later 10 passages went into the
// deleted file: lost, and their seqs reused. Now all 15 are in the database and the next
// passage is seq 16.
func TestE2EQueueOutsideReadKeepsRecords(t *testing.T) {
	sqlite3, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("no sqlite3 command line (scripts/install-deps.sh installs it)")
	}
	w := newQueueWorld(t)
	db := filepath.Join(w.Dir, "queue.db")
	cfg := queueConfig(w, []string{fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))}, "", "")
	cfgPath := filepath.Join(w.Dir, "sentinel.yaml")
	ag := w.agent(t, cfg)
	var logged []int64
	for range 5 {
		logged = append(logged, scanOne(t, w, ag))
	}
	out, err := exec.Command(sqlite3, db, "select count(*) from outbox").CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
	t.Logf("sqlite3 on the live database: %s", strings.TrimSpace(string(out)))
	if _, err := os.Stat(db + "-wal"); err != nil {
		t.Errorf("the live WAL is gone after an outside read: %v", err)
	}
	for range 10 {
		logged = append(logged, scanOne(t, w, ag))
	}
	if err := ag.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-ag.done

	seqs, _ := storedPassageSeqs(t, db)
	if len(seqs) != 15 {
		t.Fatalf("the log shows passages %v; the database holds %d passages (%v), want all 15", logged, len(seqs), seqs)
	}
	ag = start(t, nil, filepath.Join(w.Bins, "sentinel"), "run", "--config", cfgPath)
	ag.waitFor(t, regexp.MustCompile(`msg="pipeline up"`), 15*time.Second)
	if seq := scanOne(t, w, ag); seq != 16 {
		t.Fatalf("the passage after the restart has seq %d, want 16 (no seq reused)", seq)
	}
	ag.stop(t)
}

// lossNotice is the part of a queue_loss notice these tests read.
type lossNotice struct {
	Kind          string `json:"kind"`
	Missing       int64  `json:"missing"`
	MissingRanges []struct {
		Stream string `json:"stream"`
		First  int64  `json:"first_seq"`
		Last   int64  `json:"last_seq"`
		Cause  string `json:"cause"`
	} `json:"missing_ranges"`
}

// waitLossNotice waits for a queue_loss notice naming missing seqs on col.
func waitLossNotice(t *testing.T, col *mqtttest.Collector) lossNotice {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range col.Messages() {
			var n lossNotice
			if json.Unmarshal(m.Payload, &n) == nil && n.Kind == "queue_loss" && len(n.MissingRanges) > 0 {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no queue_loss notice naming missing seqs; got %d messages", len(col.Messages()))
	return lossNotice{}
}

// damagePage overwrites, with junk, the 4 KiB page of the database at path that holds the
// record with the given id, and returns the file's bytes after.
func damagePage(t *testing.T, path, id string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	uid := uuid.MustParse(id)
	off := bytes.Index(b, uid[:])
	if off < 0 {
		t.Fatal("the record is not in the main file")
	}
	page := off / 4096
	copy(b[page*4096:(page+1)*4096], bytes.Repeat([]byte("DAMAGED!"), 512))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestE2EQueueCorruptPageRefused is finding 5: a queue database with one damaged 4 KiB page
// (300 stored passages) makes `sentinel run` exit 1 with a message that names the file and
// says to run `sentinel queue salvage`, and the file is not modified. Salvage copies the
// records outside the page into a new database and names the lost ones; put in place, the
// agent starts on it, continues after seq 300 and publishes a queue_loss notice naming them.
func TestE2EQueueCorruptPageRefused(t *testing.T) {
	broker := mqtttest.Start(t)
	w := newQueueWorld(t)
	db := filepath.Join(w.Dir, "queue.db")
	ag := w.agent(t, queueConfig(w, []string{fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))}, "", ""))
	for range 300 {
		scanOne(t, w, ag)
	}
	ag.stop(t) // a clean stop: everything is in the main file
	_, ids := storedPassageSeqs(t, db)
	victim := ids[150]
	damaged := damagePage(t, db, victim)
	cfgPath := filepath.Join(w.Dir, "sentinel.yaml")
	if err := os.WriteFile(cfgPath, []byte(queueConfig(w, []string{broker.URL()}, "", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	sentinel := filepath.Join(w.Bins, "sentinel")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, sentinel, "run", "--config", cfgPath).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("sentinel run started on a damaged queue and ran (killed after 20s):\n%s", out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("sentinel run on a damaged queue: %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{"queue.path", db, "damaged", "sentinel queue salvage"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("the error does not say %q:\n%s", want, out)
		}
	}
	if b, _ := os.ReadFile(db); !bytes.Equal(b, damaged) {
		t.Fatalf("the damaged file was modified (%d -> %d bytes)", len(damaged), len(b))
	}

	salvaged := filepath.Join(t.TempDir(), "new.db")
	out, err = exec.Command(sentinel, "queue", "salvage", "--config", cfgPath, "--out", salvaged).CombinedOutput()
	if err != nil {
		t.Fatalf("salvage: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`copied +\d+ records[\s\S]*lost +passage seq (\d+)-(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("salvage does not report what it copied and lost:\n%s", out)
	}
	first, _ := strconv.Atoi(string(m[1]))
	last, _ := strconv.Atoi(string(m[2]))
	if seqs, _ := storedPassageSeqs(t, salvaged); len(seqs)+last-first+1 != 300 || first > 150 || last < 150 {
		t.Fatalf("salvage copied %d passages and lost %d-%d; want 300 in all, 150 lost:\n%s", len(seqs), first, last, out)
	}
	if b, _ := os.ReadFile(db); !bytes.Equal(b, damaged) {
		t.Fatal("salvage modified the damaged file")
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Rename(db+suffix, db+".damaged"+suffix)
	}
	if err := os.Rename(salvaged, db); err != nil {
		t.Fatal(err)
	}
	notices := broker.Subscribe(t, "sentinel/v1/"+qVenue+"/"+qDevice+"/queue")
	ag = w.agent(t, queueConfig(w, []string{broker.URL()}, "", ""))
	if seq := scanOne(t, w, ag); seq != 301 {
		t.Fatalf("the first passage on the salvaged queue has seq %d, want 301", seq)
	}
	n := waitLossNotice(t, notices)
	found := false
	for _, r := range n.MissingRanges {
		found = found || (r.Stream == "passage" && r.First == int64(first) && r.Last == int64(last) && r.Cause == "unreadable")
	}
	if !found || n.Missing < int64(last-first+1) {
		t.Fatalf("notice %+v, want passage %d-%d unreadable", n, first, last)
	}
	ag.stop(t)
}

// TestE2EQueueDamagedWAL is finding 6: SIGKILL with the broker down (everything pending in
// the WAL), then 16 bytes overwritten in a middle WAL frame: SQLite's replay silently stops
// there. The next start logs the loss at ERROR, continues the seqs after the high-water mark
// (no seq reused) and publishes a queue_loss notice naming the missing range.
func TestE2EQueueDamagedWAL(t *testing.T) {
	broker := mqtttest.Start(t)
	w := newQueueWorld(t)
	db := filepath.Join(w.Dir, "queue.db")
	cfgPath := filepath.Join(w.Dir, "sentinel.yaml")
	ag := w.agent(t, queueConfig(w, []string{fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))}, "", ""))
	const n = 20
	for range n {
		scanOne(t, w, ag)
	}
	if err := ag.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-ag.done
	b, err := os.ReadFile(db + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	ps := int(binary.BigEndian.Uint32(b[8:12]))
	frames := (len(b) - 32) / (24 + ps)
	off := 32 + (frames/2)*(24+ps) + 24 + 300
	copy(b[off:off+16], bytes.Repeat([]byte{0x5A}, 16))
	if err := os.WriteFile(db+"-wal", b, 0o600); err != nil {
		t.Fatal(err)
	}
	seqs, _ := storedPassageSeqs(t, db)
	kept := int64(len(seqs))
	if kept >= n {
		t.Fatalf("the damaged WAL (%d frames) still holds all %d passages", frames, kept)
	}

	notices := broker.Subscribe(t, "sentinel/v1/"+qVenue+"/"+qDevice+"/queue")
	if err := os.WriteFile(cfgPath, []byte(queueConfig(w, []string{broker.URL()}, "", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	ag = start(t, nil, filepath.Join(w.Bins, "sentinel"), "run", "--config", cfgPath)
	line := ag.waitFor(t, regexp.MustCompile(`level=ERROR .*behind its high-water mark.*stream=passage`), 15*time.Second)
	if !strings.Contains(line, fmt.Sprintf("first_seq=%d last_seq=%d", kept+1, n)) {
		t.Fatalf("the ERROR line does not name passage seqs %d-%d: %s", kept+1, n, line)
	}
	ag.waitFor(t, regexp.MustCompile(`msg="pipeline up"`), 15*time.Second)
	if seq := scanOne(t, w, ag); seq != n+1 {
		t.Fatalf("the next passage has seq %d, want %d (seqs %d-%d must not be used again)", seq, n+1, kept+1, n)
	}
	notice := waitLossNotice(t, notices)
	found := false
	for _, r := range notice.MissingRanges {
		found = found || (r.Stream == "passage" && r.First == kept+1 && r.Last == n && r.Cause == "behind_mark")
	}
	if !found {
		t.Fatalf("notice %+v does not name passage %d-%d", notice, kept+1, n)
	}
	ag.stop(t)
}
