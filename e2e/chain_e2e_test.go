package e2e_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/chain"
	"github.com/sentinel-edge/sentinel/internal/mqtttest"
	"github.com/sentinel-edge/sentinel/queue"
)

// The record chain end to end (docs/records.md): the built agent against Mosquitto, every
// message captured as `topic payload` lines, then `sentinel verify-records --in FILE --keys
// DIR`: a clean run verifies; an edited, deleted or replayed record and a reinstall with a
// fresh database are each named; the chain survives SIGKILLs.

// chainRig is one unit under test: the world, a broker, a capture of everything the unit
// publishes, its provisioned key (records.chain_key_file) and the platform's key directory.
type chainRig struct {
	w       *world
	broker  *mqtttest.Broker
	col     *mqtttest.Collector
	cfg     string // the config file
	db      string
	key     ed25519.PrivateKey
	keysDir string
}

func newChainRig(t *testing.T, extra string) *chainRig {
	t.Helper()
	r := &chainRig{broker: mqtttest.Start(t), w: newQueueWorld(t)}
	r.col = r.broker.Subscribe(t, "sentinel/v1/"+qVenue+"/"+qDevice+"/#")
	r.db = filepath.Join(r.w.Dir, "queue.db")
	// Provisioned: the key exists and the config names it; the platform has its public half.
	var err error
	if r.key, err = chain.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	pemKey, err := chain.MarshalPrivateKey(r.key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(r.w.Dir, "secrets", "chain.key")
	r.keysDir = filepath.Join(r.w.Dir, "platform-keys")
	pub := chain.EncodePublicKey(r.key.Public().(ed25519.PublicKey)) + "\n"
	for path, f := range map[string]struct {
		b    []byte
		mode os.FileMode
	}{keyFile: {pemKey, 0o600}, filepath.Join(r.keysDir, qVenue, qDevice+".pub"): {[]byte(pub), 0o644}} {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, f.b, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	cfg := queueConfig(r.w, []string{r.broker.URL()}, "", "") + "records: {chain_key_file: " + keyFile + extra + "}\n"
	r.cfg = filepath.Join(r.w.Dir, "sentinel.yaml")
	if err := os.WriteFile(r.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

// run starts the agent and waits for its pipeline.
func (r *chainRig) run(t *testing.T) *proc {
	t.Helper()
	ag := start(t, nil, filepath.Join(r.w.Bins, "sentinel"), "run", "--config", r.cfg)
	ag.waitOutput(t, regexp.MustCompile(`msg="pipeline up"`), 15*time.Second)
	return ag
}

// scans sends n scans and waits for each passage's log line.
func (r *chainRig) scans(t *testing.T, ag *proc, n int) {
	t.Helper()
	for range n {
		scanOne(t, r.w, ag)
	}
}

// delivered waits until the capture holds every record the outbox holds (the agent stopped:
// what it stored is in the database) and a status carrying the head of each stream as stored.
func (r *chainRig) delivered(t *testing.T, within time.Duration) {
	t.Helper()
	want := map[string]bool{}
	last := map[string]int64{}
	for _, e := range stored(t, r.db) {
		want[e.ID] = true
		last[e.Stream] = max(last[e.Stream], e.Seq)
	}
	deadline := time.Now().Add(within)
	for {
		got := map[string]bool{}
		headOK := false
		for _, m := range r.col.Messages() {
			if strings.HasSuffix(m.Topic, "/status") {
				headOK = headOK || statusCovers(m.Payload, last)
				continue
			}
			if rec, _ := chain.Check(m.Payload); rec.ID != "" { // an edited record counts too
				got[rec.ID] = true
			}
		}
		missing := 0
		for id := range want {
			if !got[id] {
				missing++
			}
		}
		if missing == 0 && headOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d of %d stored records not captured, a status with the last head: %v", within, missing, len(want), headOK)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signedHead waits (the agent running) until a captured status signs the head of every
// stream as the outbox holds it now.
func (r *chainRig) signedHead(t *testing.T, within time.Duration) {
	t.Helper()
	last := map[string]int64{}
	for _, e := range stored(t, r.db) {
		last[e.Stream] = max(last[e.Stream], e.Seq)
	}
	deadline := time.Now().Add(within)
	for {
		for _, m := range r.col.Messages() {
			if strings.HasSuffix(m.Topic, "/status") && statusCovers(m.Payload, last) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no status signing the head %v within %v", last, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statusCovers reports whether a status' head names each stream at its last seq.
func statusCovers(payload []byte, last map[string]int64) bool {
	var s record.Status
	if err := json.Unmarshal(payload, &s); err != nil || s.HeadSig == "" {
		return false
	}
	for stream, seq := range last {
		if s.Head[stream].Seq != seq {
			return false
		}
	}
	return true
}

// verify writes the capture as `topic payload` lines and runs verify-records on it; it
// returns the exit code and the report.
func (r *chainRig) verify(t *testing.T) (int, string) {
	t.Helper()
	var b bytes.Buffer
	for _, m := range r.col.Messages() {
		fmt.Fprintf(&b, "%s %s\n", m.Topic, m.Payload)
	}
	capture := filepath.Join(r.w.Dir, "capture.txt")
	if err := os.WriteFile(capture, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(r.w.Bins, "sentinel"), "verify-records", "--in", capture, "--keys", r.keysDir)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

// sqlite runs statements on the database with the sqlite3 shell (the agent stopped).
func sqlite(t *testing.T, db, statements string) string {
	t.Helper()
	out, err := exec.Command("sqlite3", db, statements).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %q: %v\n%s", statements, err, out)
	}
	return string(out)
}

// pendingPassage returns the stored passage at seq (decoded) and whether it is pending.
func pendingPassage(t *testing.T, db string, seq int64) queue.Entry {
	t.Helper()
	for _, e := range stored(t, db) {
		if e.Stream == record.StreamPassage && e.Seq == seq {
			if !e.DeliveredAt.IsZero() {
				t.Fatalf("passage %d is not pending", seq)
			}
			return e
		}
	}
	t.Fatalf("no passage %d stored", seq)
	return queue.Entry{}
}

// TestE2EChainClean: a unit's records, statuses and heads from a clean run verify (exit 0),
// and each record is chained (prev and hash) with its hash the last member.
func TestE2EChainClean(t *testing.T) {
	requireSQLite(t)
	r := newChainRig(t, "")
	ag := r.run(t)
	r.scans(t, ag, 8)
	waitDrained(t, r.w, 20*time.Second)
	ag.stop(t)
	r.delivered(t, 15*time.Second)
	code, out := r.verify(t)
	if code != 0 || !strings.Contains(out, "result: OK") {
		t.Fatalf("verify-records exit %d:\n%s", code, out)
	}
	for _, m := range r.col.Messages() {
		if strings.HasSuffix(m.Topic, "/passage") && !regexp.MustCompile(`,"hash":"[0-9a-f]{64}"\}$`).Match(m.Payload) {
			t.Fatalf("a passage not published chained: %s", m.Payload)
		}
	}
	t.Logf("verify-records:\n%s", out)
}

// tamper runs the unit: 3 passages delivered (and a signed head published); the broker down,
// 4 more stored pending; the agent stopped; change does what an opened unit's owner would to
// the stopped unit's database; the broker back, the agent started again, 2 more passages,
// everything delivered, a clean stop. It returns verify-records' exit code and report.
func tamper(t *testing.T, change func(r *chainRig)) (int, string) {
	t.Helper()
	requireSQLite(t)
	r := newChainRig(t, "")
	ag := r.run(t)
	r.scans(t, ag, 3)
	waitDrained(t, r.w, 20*time.Second)
	r.signedHead(t, 10*time.Second) // the platform holds a signed head of the first records
	r.broker.Stop()
	r.scans(t, ag, 4) // seqs 4-7, pending
	ag.stop(t)
	change(r)
	r.broker.Start()
	if !r.col.WaitSubscribes(2, 15*time.Second) {
		t.Fatal("the capture did not subscribe again after the broker's restart")
	}
	ag = r.run(t)
	r.scans(t, ag, 2)
	waitDrained(t, r.w, 20*time.Second)
	ag.stop(t)
	r.delivered(t, 15*time.Second)
	return r.verify(t)
}

// wantFinding fails unless verify-records failed (exit 1) naming kind.
func wantFinding(t *testing.T, code int, out string, kinds ...string) {
	t.Helper()
	for _, k := range kinds {
		if code != 1 || !strings.Contains(out, "FAIL "+k+" ") {
			t.Fatalf("verify-records exit %d without FAIL %s:\n%s", code, k, out)
		}
	}
	t.Logf("verify-records:\n%s", out)
}

// TestE2EChainEditedRecord: one byte of a stored pending passage changed (its ts backdated by
// a second, stored again as plain JSON, enc 0, as an owner of the file can): hash_mismatch.
func TestE2EChainEditedRecord(t *testing.T) {
	code, out := tamper(t, func(r *chainRig) {
		e := pendingPassage(t, r.db, 5)
		i := bytes.Index(e.Payload, []byte(`"ts":"`)) + len(`"ts":"2026-11-25T08:00:0`)
		edited := append([]byte(nil), e.Payload...)
		edited[i] = "1234567890"[edited[i]-'0'] // the seconds' last digit, one byte
		sqlite(t, r.db, fmt.Sprintf(`UPDATE outbox SET payload = X'%x', enc = 0 WHERE stream = 'passage' AND seq = 5`, edited))
	})
	wantFinding(t, code, out, "hash_mismatch")
}

// TestE2EChainDeletedRecord: a pending passage deleted from the outbox before delivery: a gap,
// which the unit's later signed head says was stored.
func TestE2EChainDeletedRecord(t *testing.T) {
	code, out := tamper(t, func(r *chainRig) {
		sqlite(t, r.db, `DELETE FROM outbox WHERE stream = 'passage' AND seq = 6`)
	})
	wantFinding(t, code, out, "gap")
	if !strings.Contains(out, "gap passage seq 6") || !strings.Contains(out, "signed head") {
		t.Fatalf("the gap is not passage seq 6 vouched for by a signed head:\n%s", out)
	}
}

// TestE2EChainReplayedRecord: an old, delivered passage (seq 2) stored again as the next
// pending one with a new seq, chained properly onto the stream's head (the hash needs no
// key) and the stream's head moved to it, so the unit goes on from it: replayed.
func TestE2EChainReplayedRecord(t *testing.T) {
	code, out := tamper(t, func(r *chainRig) {
		var old queue.Entry
		for _, e := range stored(t, r.db) {
			if e.Stream == record.StreamPassage && e.Seq == 2 {
				old = e
			}
		}
		headHex := strings.TrimSpace(sqlite(t, r.db, `SELECT hex(chain_hash) FROM streams WHERE stream = 'passage'`))
		head, err := hex.DecodeString(headHex)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if err := json.Unmarshal(old.Payload, &body); err != nil {
			t.Fatal(err)
		}
		delete(body, "prev")
		delete(body, "hash")
		body["seq"] = 8
		raw, _ := json.Marshal(body)
		u := &chain.Unit{Venue: qVenue, Device: qDevice, Alg: chain.SHA256, Key: r.key} // Link uses no key
		replay, hash, err := u.Link("passage", head, raw)
		if err != nil {
			t.Fatal(err)
		}
		uid := uuid.MustParse(old.ID)
		sqlite(t, r.db, fmt.Sprintf(`INSERT INTO outbox (uid, stream, seq, topic, payload, enc, created_at) VALUES (X'%x', 'passage', 8, '', X'%x', 0, %d);
			UPDATE streams SET last_seq = 8, chain_seq = 8, chain_hash = X'%x' WHERE stream = 'passage';`, uid[:], replay, time.Now().UnixMilli(), hash))
	})
	wantFinding(t, code, out, "replayed")
}

// TestE2EChainReinstalled: the unit reinstalled with a fresh database (the same key): its
// streams start again from their genesis and its heads go back: restarted, head_backwards.
func TestE2EChainReinstalled(t *testing.T) {
	code, out := tamper(t, func(r *chainRig) {
		for _, p := range []string{r.db, r.db + "-wal", r.db + "-shm", r.db + ".hwm"} {
			_ = os.Remove(p)
		}
	})
	wantFinding(t, code, out, "restarted", "head_backwards")
}

// TestE2EChainKill: the chain survives SIGKILL at any point: 20 kills at random moments while
// scans flow, then a clean run; everything verifies.
func TestE2EChainKill(t *testing.T) {
	requireSQLite(t)
	r := newChainRig(t, "")
	ag := r.run(t)
	f := feed(t, r.w, 5*time.Millisecond)
	passage := regexp.MustCompile(`msg=passage `)
	for range 20 {
		ag.waitFor(t, passage, 15*time.Second)
		time.Sleep(time.Duration(rand.IntN(80)) * time.Millisecond)
		if err := ag.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-ag.done
		ag = r.run(t)
	}
	f.halt()
	waitDrained(t, r.w, 30*time.Second)
	ag.stop(t)
	r.delivered(t, 20*time.Second)
	code, out := r.verify(t)
	if code != 0 {
		t.Fatalf("after 20 SIGKILLs verify-records exit %d:\n%s", code, out)
	}
	n := 0
	for _, e := range stored(t, r.db) {
		if e.Stream == record.StreamPassage {
			n++
		}
	}
	t.Logf("%d passages over 21 runs verify:\n%s", n, out)
}

func requireSQLite(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Fatalf("the chain tests need the sqlite3 shell (scripts/install-deps.sh): %v", err)
	}
}
