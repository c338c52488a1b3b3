package queue

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/chain"
	"github.com/sentinel-edge/sentinel/internal/chain/chaintest"
)

// The record chain in the writer (chain.go, docs/records.md).

const chainPrefix = "sentinel/v1/350582-0001/gate-01/"

func testUnit() *chain.Unit {
	return &chain.Unit{Venue: "350582-0001", Device: "gate-01", Alg: chain.SHA256, Key: chaintest.ExampleKey()}
}

// chainAppend appends a passage-like record to stream (topic under chainPrefix).
func chainAppend(t testing.TB, o *Outbox, stream string) Entry {
	t.Helper()
	e, err := o.Append(context.Background(), stream, chainPrefix+stream, passagePayload)
	if err != nil {
		t.Fatalf("Append(%s): %v", stream, err)
	}
	return e
}

// checkLinks checks that es, one stream's records in seq order from the stream's genesis (or
// from after a record whose hash is from), are each chained to the one before.
func checkLinks(t *testing.T, u *chain.Unit, stream string, from []byte, es []Entry) {
	t.Helper()
	prev := from
	if prev == nil {
		prev = u.Genesis(stream)
	}
	for i, e := range es {
		r, err := chain.Check(e.Payload)
		if err != nil {
			t.Fatalf("%s seq %d: %v", stream, e.Seq, err)
		}
		if r.Seq != e.Seq || r.ID != e.ID || !r.Published {
			t.Fatalf("%s record %d: seq %d id %s published %v, want seq %d id %s as the unit publishes", stream, i, r.Seq, r.ID, r.Published, e.Seq, e.ID)
		}
		if !bytes.Equal(r.Prev, prev) {
			t.Fatalf("%s seq %d: prev %x, want %x (the record before it)", stream, e.Seq, r.Prev[:6], prev[:6])
		}
		prev = r.Hash
	}
}

// pendingOf returns the pending entries of stream, in seq order (one class: insertion order).
func pendingOf(t *testing.T, o *Outbox, stream string) []Entry {
	t.Helper()
	p, err := o.Pending(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []Entry
	for _, e := range p {
		if e.Stream == stream {
			out = append(out, e)
		}
	}
	return out
}

// verify runs the reference verifier over every pending record and a status signing o's
// heads, and returns its report.
func verify(t *testing.T, u *chain.Unit, o *Outbox, extra ...Entry) *chain.Report {
	t.Helper()
	v := chain.NewVerifier(chain.VerifyOptions{Keys: map[string][]ed25519.PublicKey{u.Venue + "/" + u.Device: {u.Key.Public().(ed25519.PublicKey)}}})
	p, err := o.Pending(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range append(extra, p...) {
		v.Add(e.Topic, e.Payload)
	}
	v.Add(chainPrefix+"status", statusOf(t, u, o))
	return v.Report()
}

// statusOf is a status message with o's heads signed by u, as the agent publishes it.
func statusOf(t *testing.T, u *chain.Unit, o *Outbox) []byte {
	t.Helper()
	h, err := o.Heads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	sig, err := u.SignHead(ts, h)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"online": true, "ts": ts, "device": u.Device, "venue": u.Venue, "head": h, "head_sig": sig, "chain_key": u.PublicKey()})
	return b
}

// kinds lists the kinds of the report's findings.
func kinds(rep *chain.Report) []string {
	var out []string
	for _, un := range rep.Units {
		for _, f := range un.Findings {
			out = append(out, string(f.Kind)+" "+f.Stream+": "+f.Detail)
		}
	}
	return out
}

// TestChainEveryRecord: every record of every stream is stored chained, the first to its
// stream's genesis and each to the one before; what is stored is what Append returned and
// what every read gives (a retry republishes the same bytes); Heads names each stream's last
// record; the reference verifier accepts it all.
func TestChainEveryRecord(t *testing.T) {
	u := testUnit()
	o, path := openTemp(t, Options{Chain: u})
	var want = map[string][]Entry{}
	for i := range 12 {
		stream := []string{"passage", "audit", "event"}[i%3]
		want[stream] = append(want[stream], chainAppend(t, o, stream))
	}
	for stream, es := range want {
		checkLinks(t, u, stream, nil, es)
		got := pendingOf(t, o, stream)
		again := pendingOf(t, o, stream)
		for i := range es {
			if !bytes.Equal(got[i].Payload, es[i].Payload) || !bytes.Equal(again[i].Payload, es[i].Payload) {
				t.Fatalf("%s seq %d: stored or re-read payload differs from the one appended", stream, es[i].Seq)
			}
		}
	}
	h, err := o.Heads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for stream, es := range want {
		last, _ := chain.Check(es[len(es)-1].Payload)
		if h[stream] != chain.NewStreamHead(last.Seq, last.Hash) {
			t.Fatalf("head of %s: %+v, want seq %d hash %x", stream, h[stream], last.Seq, last.Hash)
		}
	}
	if rep := verify(t, u, o); !rep.OK {
		t.Fatalf("the verifier found: %v", kinds(rep))
	}
	// The same heads from another process's Reader.
	r, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if rh, err := r.Heads(context.Background()); err != nil || fmt.Sprint(rh) != fmt.Sprint(h) {
		t.Fatalf("Reader.Heads %v (%v), want %v", rh, err, h)
	}
}

// TestChainGroupCommit: many appenders share transactions; within one, several records of one
// stream are each linked to the one before in seq order.
func TestChainGroupCommit(t *testing.T) {
	u := testUnit()
	o, _ := openTemp(t, Options{Chain: u})
	const appenders, each = 32, 8
	var wg sync.WaitGroup
	for w := range appenders {
		wg.Go(func() {
			for range each {
				chainAppend(t, o, []string{"passage", "audit"}[w%2])
			}
		})
	}
	wg.Wait()
	if tx := o.txCount.Load(); tx >= appenders*each {
		t.Fatalf("%d transactions for %d appends: no group commit to test", tx, appenders*each)
	}
	for _, stream := range []string{"passage", "audit"} {
		es := pendingOf(t, o, stream)
		if len(es) != appenders*each/2 {
			t.Fatalf("%s: %d records", stream, len(es))
		}
		checkLinks(t, u, stream, nil, es)
	}
	if rep := verify(t, u, o); !rep.OK {
		t.Fatalf("the verifier found: %v", kinds(rep))
	}
}

// holdWriter makes the writer's next transaction wait in a build until release is closed, so
// that the appends submitted meanwhile share the transaction after it.
func holdWriter(t *testing.T, o *Outbox, stream string) (release func(), done <-chan Entry) {
	t.Helper()
	hold, taken := make(chan struct{}), make(chan struct{})
	out := make(chan Entry, 1)
	go func() {
		e, err := o.Append(context.Background(), stream, chainPrefix+stream, func(seq int64, id string) ([]byte, error) {
			close(taken)
			<-hold
			return passagePayload(seq, id)
		})
		if err != nil {
			t.Error(err)
		}
		out <- e
	}()
	<-taken
	return func() { close(hold) }, out
}

// queued submits an append in the background and waits until it waits for the writer, so
// that appends are taken in the order queued.
func queued(t *testing.T, o *Outbox, stream string, build func(int64, string) ([]byte, error)) <-chan appendResult {
	t.Helper()
	n := len(o.reqs)
	out := make(chan appendResult, 1)
	go func() {
		e, err := o.Append(context.Background(), stream, chainPrefix+stream, build)
		out <- appendResult{e, err}
	}()
	waitUntil(t, 5*time.Second, "the append to wait for the writer", func() bool { return len(o.reqs) > n })
	return out
}

type appendResult struct {
	e   Entry
	err error
}

// TestChainBuildFailure: a record whose build fails (or whose payload cannot be chained) in
// the middle of a transaction leaves no trace: the next record of its stream takes its seq
// and links to the record before it.
func TestChainBuildFailure(t *testing.T) {
	u := testUnit()
	o, _ := openTemp(t, Options{Chain: u})
	first := chainAppend(t, o, "passage")
	release, held := holdWriter(t, o, "event")
	b := queued(t, o, "passage", passagePayload)
	c := queued(t, o, "passage", func(int64, string) ([]byte, error) { return nil, errors.New("no") })
	d := queued(t, o, "passage", func(int64, string) ([]byte, error) { return []byte(`not json`), nil })
	e := queued(t, o, "passage", func(seq int64, id string) ([]byte, error) {
		return fmt.Appendf(nil, `{"id":%q,"seq":%d,"prev":"x"}`, id, seq), nil // a chain member already
	})
	f := queued(t, o, "passage", passagePayload)
	tx := o.txCount.Load()
	release()
	<-held
	rb, rc, rd, re, rf := <-b, <-c, <-d, <-e, <-f
	if rb.err != nil || rf.err != nil || rc.err == nil || rd.err == nil || !errors.Is(rd.err, chain.ErrNotCanonicalizable) || !errors.Is(re.err, chain.ErrRecord) {
		t.Fatalf("errors: b %v c %v d %v e %v f %v", rb.err, rc.err, rd.err, re.err, rf.err)
	}
	if o.txCount.Load() != tx+2 {
		t.Fatalf("%d transactions after the held one, want 1 (the appends shared one)", o.txCount.Load()-tx-1)
	}
	if rb.e.Seq != 2 || rf.e.Seq != 3 {
		t.Fatalf("seqs %d, %d, want 2, 3", rb.e.Seq, rf.e.Seq)
	}
	checkLinks(t, u, "passage", nil, []Entry{first, rb.e, rf.e})
	if rep := verify(t, u, o); !rep.OK {
		t.Fatalf("the verifier found: %v", kinds(rep))
	}
}

// TestChainFullOutbox: a record the full outbox refuses (reject_new) in the middle of a
// transaction is not linked to: the next one takes its seq and links to the last stored. With
// drop_oldest, the records dropped were stored and linked: the chain goes on past them, and
// the queue_loss notice carries every stream's head, signed.
func TestChainFullOutbox(t *testing.T) {
	u := testUnit()
	t.Run("reject_new", func(t *testing.T) {
		o, _ := openTemp(t, Options{Chain: u})
		first := chainAppend(t, o, "passage")
		if err := o.SetCapacity(Capacity{MaxBytes: 3000, OnFull: OnFullRejectNew, NoticeTopic: chainPrefix + NoticeStream}); err != nil {
			t.Fatal(err)
		}
		release, held := holdWriter(t, o, "event")
		b := queued(t, o, "passage", passagePayload)
		big := queued(t, o, "passage", func(seq int64, id string) ([]byte, error) {
			return fmt.Appendf(nil, `{"id":%q,"seq":%d,"pad":%q}`, id, seq, strings.Repeat("x", 4000)), nil
		})
		d := queued(t, o, "passage", passagePayload)
		release()
		<-held
		rb, rbig, rd := <-b, <-big, <-d
		if rb.err != nil || rd.err != nil || !errors.Is(rbig.err, ErrFull) {
			t.Fatalf("errors: %v %v %v", rb.err, rbig.err, rd.err)
		}
		if rd.e.Seq != 3 {
			t.Fatalf("the record after the refused one has seq %d, want 3", rd.e.Seq)
		}
		checkLinks(t, u, "passage", nil, []Entry{first, rb.e, rd.e})
		if rep := verify(t, u, o); !rep.OK {
			t.Fatalf("the verifier found: %v", kinds(rep))
		}
	})
	t.Run("drop_oldest", func(t *testing.T) {
		o, _ := openTemp(t, Options{Chain: u})
		if err := o.SetCapacity(Capacity{MaxRecords: 6, OnFull: OnFullDropOldest, NoticeTopic: chainPrefix + NoticeStream}); err != nil {
			t.Fatal(err)
		}
		var all []Entry
		for range 10 {
			all = append(all, chainAppend(t, o, "passage"))
		}
		checkLinks(t, u, "passage", nil, all)
		stored := pendingOf(t, o, "passage")
		if len(stored) >= 10 || len(stored) == 0 {
			t.Fatalf("%d of 10 records kept: nothing dropped to test", len(stored))
		}
		ns := pendingOf(t, o, NoticeStream)
		if len(ns) == 0 {
			t.Fatal("no queue_loss notice")
		}
		r0, _ := chain.Check(ns[0].Payload) // the first notices may have been dropped too
		checkLinks(t, u, NoticeStream, r0.Prev, ns)
		var n notice
		if err := json.Unmarshal(ns[0].Payload, &n); err != nil {
			t.Fatal(err)
		}
		if !chain.VerifyHead(u.Key.Public().(ed25519.PublicKey), u.Venue, u.Device, n.TS, n.Head, n.HeadSig) {
			t.Fatalf("the notice's head %v does not verify (sig %q)", n.Head, n.HeadSig)
		}
		if _, ok := n.Head["passage"]; !ok {
			t.Fatalf("the notice's head %v lacks the stream that lost records", n.Head)
		}
		// The platform had received record 1: the verifier sees the records dropped after it
		// as gaps that the unit's signed heads cover, and nothing else.
		rep := verify(t, u, o, all[0])
		for _, f := range kinds(rep) {
			if !strings.HasPrefix(f, "gap ") || !strings.Contains(f, "signed head") {
				t.Fatalf("the verifier found more than the dropped records' gap: %v", kinds(rep))
			}
		}
		if rep.OK {
			t.Fatal("the verifier did not report the dropped records")
		}
	})
}

// TestChainRestartContinues: after a stop (or a SIGKILL: the head is in the database, written
// with the record) the next record links to the last one stored before.
func TestChainRestartContinues(t *testing.T) {
	u := testUnit()
	path := filepath.Join(t.TempDir(), "queue.db")
	o, err := Open(path, Options{Chain: u})
	if err != nil {
		t.Fatal(err)
	}
	before := []Entry{chainAppend(t, o, "passage"), chainAppend(t, o, "passage")}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o, err = Open(path, Options{Chain: u})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	after := chainAppend(t, o, "passage")
	checkLinks(t, u, "passage", nil, append(before, after))
	if rep := verify(t, u, o); !rep.OK {
		t.Fatalf("the verifier found: %v", kinds(rep))
	}
}

// TestChainUpgrade: an outbox of records stored before the chain chains its next record to the
// stream's genesis, at the seq it has.
func TestChainUpgrade(t *testing.T) {
	u := testUnit()
	path := filepath.Join(t.TempDir(), "queue.db")
	o, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := chainAppend(t, o, "passage")
	if _, err := chain.Check(old.Payload); !errors.Is(err, chain.ErrUnchained) {
		t.Fatalf("an unchained outbox chained: %v", err)
	}
	o.Close()
	o, err = Open(path, Options{Chain: u})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	e := chainAppend(t, o, "passage")
	if e.Seq != 2 {
		t.Fatalf("seq %d, want 2", e.Seq)
	}
	checkLinks(t, u, "passage", nil, []Entry{e})
}

// TestChainGapAfterMarkLoss: records lost behind the high-water mark (here the database
// emptied) leave a gap, and the next record links to the last one stored before the loss (the
// mark holds its hash): a platform that had received them sees an unbroken chain; one that
// had not sees a gap, signed for by the unit's head and named by the queue_loss notice, and
// no broken link.
func TestChainGapAfterMarkLoss(t *testing.T) {
	u := testUnit()
	o, path := openTemp(t, Options{Chain: u})
	before := appendChained(t, o, 5)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	o2, err := Open(path, Options{Chain: u})
	if err != nil {
		t.Fatal(err)
	}
	defer o2.Close()
	if err := o2.SetCapacity(Capacity{NoticeTopic: chainPrefix + NoticeStream}); err != nil {
		t.Fatal(err)
	}
	after := chainAppend(t, o2, "passage")
	if after.Seq != 6 {
		t.Fatalf("seq %d after the loss, want 6", after.Seq)
	}
	checkLinks(t, u, "passage", nil, append(before, after))
	waitUntil(t, 5*time.Second, "a queue_loss notice", func() bool { return len(pendingOf(t, o2, NoticeStream)) > 0 })

	// All delivered before the loss: the chain verifies across it.
	if rep := verify(t, u, o2, before...); !rep.OK {
		t.Fatalf("with every record delivered the verifier found: %v", kinds(rep))
	}
	// Records 4 and 5 never delivered: a gap, not a broken link.
	rep := verify(t, u, o2, before[:3]...)
	fs := kinds(rep)
	if len(fs) != 1 || !strings.HasPrefix(fs[0], "gap passage: seq 4-5") || !strings.Contains(fs[0], "signed head") {
		t.Fatalf("with records 4-5 lost the verifier found %v, want one gap of passage 4-5 that the signed head covers", fs)
	}
}

func appendChained(t *testing.T, o *Outbox, n int) []Entry {
	var es []Entry
	for range n {
		es = append(es, chainAppend(t, o, "passage"))
	}
	return es
}

// TestChainMarkHoldsHash: the high-water mark holds the hash of each chained stream's last
// record, written after the commit.
func TestChainMarkHoldsHash(t *testing.T) {
	o, path := openTemp(t, Options{Chain: testUnit()})
	e := chainAppend(t, o, "passage")
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	r, _ := chain.Check(e.Payload)
	m, err := readMark(markPathOf(path))
	if err != nil || m.seqs["passage"] != 1 || !bytes.Equal(m.hashes["passage"], r.Hash) {
		t.Fatalf("mark %+v (%v), want passage 1 with hash %x", m, err, r.Hash[:6])
	}
}

// TestChainSalvage: a salvaged database keeps each stream's chain head, so the agent's next
// record links to the last one of the old database, also when its streams table is lost (the
// head is then taken from the old high-water mark).
func TestChainSalvage(t *testing.T) {
	u := testUnit()
	for _, lose := range []bool{false, true} {
		t.Run(fmt.Sprintf("streams_table_lost=%v", lose), func(t *testing.T) {
			o, path := openTemp(t, Options{Chain: u})
			es := appendChained(t, o, 3)
			if lose {
				if _, err := o.wc.ExecContext(context.Background(), `UPDATE streams SET chain_seq = NULL, chain_hash = NULL`); err != nil {
					t.Fatal(err)
				}
			}
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "new.db")
			if _, err := Salvage(context.Background(), path, dst); err != nil {
				t.Fatal(err)
			}
			n, err := Open(dst, Options{Chain: u})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			checkLinks(t, u, "passage", nil, append(es, chainAppend(t, n, "passage")))
		})
	}
}

// TestChainStoredEncoding: chained records are stored with the canonical-order dictionary
// (enc 3), smaller than with the agent-order one, and read back byte for byte; an unchained
// record keeps enc 2; a payload that merely ends like a chained one round-trips too.
func TestChainStoredEncoding(t *testing.T) {
	o, _ := openTemp(t, Options{Chain: testUnit()})
	e := chainAppend(t, o, "passage")
	var enc int
	var stored []byte
	if err := o.db.QueryRow(`SELECT enc, payload FROM outbox WHERE seq = 1`).Scan(&enc, &stored); err != nil {
		t.Fatal(err)
	}
	if enc != encSplitCanonical {
		t.Fatalf("a chained record stored with enc %d, want %d", enc, encSplitCanonical)
	}
	if old := encodeSplit(e.Payload, e.ID, &flateWriters2); len(stored) >= len(old) {
		t.Fatalf("enc 3 stores %d bytes, enc 2 would store %d", len(stored), len(old))
	}
	if got := pendingOf(t, o, "passage"); !bytes.Equal(got[0].Payload, e.Payload) {
		t.Fatal("the chained record does not read back byte for byte")
	}
	plain, _ := passagePayload(1, e.ID)
	if _, enc := encode(plain, e.ID); enc != encSplit {
		t.Fatalf("an unchained record encoded with %d", enc)
	}
	odd := []byte(`{"x":"` + strings.Repeat("é\\\"", 20) + `","hash":"` + strings.Repeat("0", 64) + `"}`)
	s, enc := encode(odd, "")
	if back, err := decode(s, enc, ""); err != nil || !bytes.Equal(back, odd) {
		t.Fatalf("enc %d round trip: %v", enc, err)
	}
}
