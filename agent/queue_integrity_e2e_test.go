package agent_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent"
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
		if e.Stream == agent.StreamPassage {
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
