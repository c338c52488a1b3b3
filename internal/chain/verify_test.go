package chain_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/sentinel-edge/sentinel/internal/chain"
	"github.com/sentinel-edge/sentinel/internal/chain/chaintest"
)

type msg = chaintest.Msg

func mk(topic string, payload []byte) msg { return msg{Topic: topic, Payload: payload} }

func cleanCapture() *chaintest.Sim { return chaintest.Clean() }

func newSim(k ed25519.PrivateKey) *chaintest.Sim { return chaintest.New(k) }

func testKey() ed25519.PrivateKey { return chaintest.ExampleKey() }

func verify(t *testing.T, opts VerifyOptions, msgs ...[]msg) *Report {
	t.Helper()
	v := NewVerifier(opts)
	for _, list := range msgs {
		for _, m := range list {
			v.Add(m.Topic, m.Payload)
		}
	}
	return v.Report()
}

func kinds(r *Report) []Kind {
	var out []Kind
	for _, u := range r.Units {
		for _, f := range u.Findings {
			if !slices.Contains(out, f.Kind) {
				out = append(out, f.Kind)
			}
		}
	}
	slices.Sort(out)
	return out
}

func text(r *Report) string {
	var b bytes.Buffer
	_ = r.WriteText(&b)
	return b.String()
}

func TestVerifyClean(t *testing.T) {
	s := cleanCapture()
	r := verify(t, VerifyOptions{}, s.Out)
	if !r.OK || len(r.Units) != 1 || r.Records != 18 || !r.TOFU {
		t.Fatalf("clean capture does not verify:\n%s", text(r))
	}
	for _, st := range r.Units[0].Streams {
		if st.VerifiedSeq != st.LastSeq || st.StartsFrom != "genesis" || st.Head == nil || st.Head.Seq != st.LastSeq || st.Missing != 0 {
			t.Errorf("stream %+v", st)
		}
	}
	if out := text(r); !strings.Contains(out, "TRUST ON FIRST USE") || !strings.Contains(out, "result: OK") {
		t.Errorf("report:\n%s", out)
	}
	// With the key from a file instead: no trust on first use.
	keys := map[string][]ed25519.PublicKey{"350582-0001/gate-01": {testKey().Public().(ed25519.PublicKey)}}
	if r := verify(t, VerifyOptions{Keys: keys}, s.Out); !r.OK || r.TOFU || r.Units[0].KeySource != KeyFromFile {
		t.Fatalf("with --keys:\n%s", text(r))
	}
}

// At-least-once delivery: records and statuses again, in another order, and the backlog
// overtaken by live records; all fine.
func TestVerifyDuplicatesAndOrder(t *testing.T) {
	s := cleanCapture()
	again := append(slices.Clone(s.Out[3:9]), s.Out...) // statuses again too: redelivered, or captures joined
	slices.Reverse(again[:6])
	r := verify(t, VerifyOptions{}, s.Out, again)
	if !r.OK {
		t.Fatalf("duplicates fail:\n%s", text(r))
	}
	dups := 0
	for _, st := range r.Units[0].Streams {
		dups += st.Duplicates
	}
	if dups != 24 {
		t.Errorf("duplicates %d, want 24", dups)
	}
}

// The capture began after the unit's first records: the records it has verify from there.
func TestVerifyCaptureStartsLate(t *testing.T) {
	s := cleanCapture()
	n := len(s.Out)
	s.Status(false)
	s.Records("passage", 3)
	s.Status(false)
	r := verify(t, VerifyOptions{}, s.Out[n:])
	st := r.Units[0].Streams
	if !r.OK || st[2].Stream != "passage" || st[2].FirstSeq != 11 || st[2].VerifiedSeq != 13 || st[2].StartsFrom != "capture" {
		t.Fatalf("late capture:\n%s\n%+v", text(r), st)
	}
}

// The tamper cases of the issue, each detected and named.
func TestVerifyTamper(t *testing.T) {
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32))
	tests := []struct {
		name   string
		tamper func(s *chaintest.Sim) []msg
		want   []Kind
	}{
		{"one byte of a stored payload edited", func(s *chaintest.Sim) []msg {
			out := slices.Clone(s.Out)
			i := findSeq(out, "passage", 7)
			out[i].Payload = bytes.Replace(out[i].Payload, []byte(`"verdict":"pass"`), []byte(`"verdict":"dass"`), 1)
			return out
		}, []Kind{KindHashMismatch}},
		{"edited after a first delivery, resent", func(s *chaintest.Sim) []msg {
			i := findSeq(s.Out, "passage", 7)
			edited := mk(s.Out[i].Topic, bytes.Replace(s.Out[i].Payload, []byte(`"reason":"ok"`), []byte(`"reason":"no"`), 1))
			return append(slices.Clone(s.Out), edited)
		}, []Kind{KindHashMismatch}},
		{"a record deleted from the outbox before delivery", func(s *chaintest.Sim) []msg {
			return slices.Delete(slices.Clone(s.Out), findSeq(s.Out, "passage", 4), findSeq(s.Out, "passage", 4)+1)
		}, []Kind{KindGap}},
		{"the last records deleted before delivery (the head vouches for them)", func(s *chaintest.Sim) []msg {
			out := slices.Clone(s.Out)
			return slices.DeleteFunc(out, func(m msg) bool { return isSeq(m, "passage", 9) || isSeq(m, "passage", 10) })
		}, []Kind{KindGap}},
		{"deleted and the rest renumbered, rechained with the unit's code", func(s *chaintest.Sim) []msg {
			// The outbox rewritten from seq 4 on: the chain is consistent again, but the
			// heads signed before name the old records.
			r := newSim(testKey())
			r.NextID = 100
			for q := int64(1); q <= 3; q++ {
				r.Out = append(r.Out, s.Out[findSeq(s.Out, "passage", q)])
			}
			r.Seq["passage"], r.Prev["passage"] = 3, mustCheck(s.Out[findSeq(s.Out, "passage", 3)].Payload).Hash
			r.Records("passage", 6)
			return append(filterOut(s.Out, "passage"), r.Out...)
		}, []Kind{KindGap, KindHeadMismatch}},
		{"an old record replayed with a new seq", func(s *chaintest.Sim) []msg {
			old := s.Out[findSeq(s.Out, "passage", 2)]
			replay := bytes.Replace(old.Payload, []byte(`"seq":2,`), []byte(`"seq":11,`), 1)
			return append(slices.Clone(s.Out), mk(old.Topic, replay))
		}, []Kind{KindHashMismatch, KindReplayed}},
		{"an old record replayed with a new seq, rechained properly", func(s *chaintest.Sim) []msg {
			old := mustCheck(s.Out[findSeq(s.Out, "passage", 2)].Payload)
			var v map[string]any
			_ = json.Unmarshal(s.Out[findSeq(s.Out, "passage", 2)].Payload, &v)
			delete(v, "prev")
			delete(v, "hash")
			v["seq"] = 11
			b, _ := json.Marshal(v)
			chained, _, err := s.Unit.Link("passage", s.Prev["passage"], b)
			if err != nil || old.ID == "" {
				t.Fatal(err)
			}
			return append(slices.Clone(s.Out), mk(s.Topic("passage"), chained))
		}, []Kind{KindReplayed}},
		{"reinstalled with a fresh database (same key)", func(s *chaintest.Sim) []msg {
			fresh := newSim(testKey())
			fresh.NextID, fresh.Clock = 1000, s.Clock
			fresh.Status(false)
			fresh.Records("passage", 3)
			fresh.Status(false)
			return append(slices.Clone(s.Out), fresh.Out...)
		}, []Kind{KindHeadBackwards, KindRestarted}},
		{"reinstalled and re-provisioned (a new key)", func(s *chaintest.Sim) []msg {
			fresh := newSim(other)
			fresh.NextID, fresh.Clock = 1000, s.Clock
			fresh.Status(false)
			fresh.Records("passage", 3)
			return append(slices.Clone(s.Out), fresh.Out...)
		}, []Kind{KindBadGenesis, KindHeadBadSig, KindKeyChanged, KindRestarted}},
		{"a fork: two records chained to one", func(s *chaintest.Sim) []msg {
			b := &chaintest.Sim{Unit: s.Unit, Prefix: s.Prefix, Seq: map[string]int64{"passage": 9}, Prev: map[string][]byte{}, Clock: s.Clock, NextID: 500}
			b.Prev["passage"] = mustCheck(s.Out[findSeq(s.Out, "passage", 9)].Payload).Hash
			b.Record("passage")
			return append(slices.Clone(s.Out), b.Out...)
		}, []Kind{KindFork}},
		{"a record replaced by another with a random prev", func(s *chaintest.Sim) []msg {
			out := slices.Clone(s.Out)
			i := findSeq(out, "passage", 6)
			var v map[string]any
			_ = json.Unmarshal(out[i].Payload, &v)
			delete(v, "prev")
			delete(v, "hash")
			v["verdict"] = "deny"
			b, _ := json.Marshal(v)
			chained, _, _ := Link(SHA256, bytes.Repeat([]byte{0xee}, 32), b)
			out[i].Payload = chained
			return out
		}, []Kind{KindBrokenLink}},
		{"a newer head signed behind an older one", func(s *chaintest.Sim) []msg {
			s.Seq["passage"] = 4 // the unit's database rolled back to seq 4
			s.Prev["passage"] = mustCheck(s.Out[findSeq(s.Out, "passage", 4)].Payload).Hash
			s.Status(false)
			return s.Out
		}, []Kind{KindHeadBackwards}},
		{"a head altered without the key", func(s *chaintest.Sim) []msg {
			out := slices.Clone(s.Out)
			i := findStatus(out, 3)
			var v map[string]any
			_ = json.Unmarshal(out[i].Payload, &v)
			v["head"].(map[string]any)["passage"].(map[string]any)["seq"] = 12
			out[i].Payload, _ = json.Marshal(v)
			return out
		}, []Kind{KindHeadBadSig}},
		{"records of another unit on this unit's topic", func(s *chaintest.Sim) []msg {
			o := newSim(testKey())
			o.Unit.Device = "gate-02"
			m := o.Record("event")
			m.Topic = s.Topic("event")
			return append(slices.Clone(s.Out), m)
		}, []Kind{KindBadGenesis, KindMisplaced, KindReusedSeq}},
		{"records stripped of their chain", func(s *chaintest.Sim) []msg {
			return append(slices.Clone(s.Out), mk(s.Topic("passage"), []byte(`{"id":"x","seq":11,"verdict":"pass"}`)))
		}, []Kind{KindUnchained}},
		{"junk on a record topic", func(s *chaintest.Sim) []msg {
			return append(slices.Clone(s.Out), mk(s.Topic("passage"), []byte(`{"id":`)), mk(s.Topic("status"), []byte(`nope`)))
		}, []Kind{KindMalformed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := cleanCapture()
			r := verify(t, VerifyOptions{}, tt.tamper(s))
			if got := kinds(r); r.OK || !slices.Equal(got, tt.want) {
				t.Fatalf("findings %v, want %v\n%s", got, tt.want, text(r))
			}
		})
	}
}

// A last will arrives after newer statuses (the broker publishes it when the unit vanishes):
// its older head is no step back.
func TestVerifyWillIsNotBackwards(t *testing.T) {
	s := newSim(testKey())
	s.Status(false)
	will := s.Status(true) // registered when the control connection came up
	s.Out = s.Out[:1]
	s.Records("passage", 4)
	s.Status(false)
	s.Out = append(s.Out, will)
	if r := verify(t, VerifyOptions{}, s.Out); !r.OK {
		t.Fatalf("will:\n%s", text(r))
	}
}

// queue_loss notices carry signed heads too; one that goes back is named.
func TestVerifyNoticeHeads(t *testing.T) {
	s := newSim(testKey())
	s.Status(false)
	s.Records("passage", 3)
	s.Notice(1)
	s.Records("passage", 2)
	s.Notice(0)
	s.Status(false)
	r := verify(t, VerifyOptions{}, s.Out)
	if !r.OK || r.Units[0].Heads != 4 || r.Units[0].HeadsOK != 4 {
		t.Fatalf("notices:\n%s", text(r))
	}
	// A notice whose head was altered.
	out := slices.Clone(s.Out)
	i := findSeq(out, "queue", 2)
	out[i].Payload = bytes.Replace(out[i].Payload, []byte(`"seq":5`), []byte(`"seq":4`), 1)
	if got := kinds(verify(t, VerifyOptions{}, out)); !slices.Equal(got, []Kind{KindHashMismatch, KindHeadBadSig}) {
		t.Fatalf("altered notice: %v", got)
	}
}

func TestVerifyKeys(t *testing.T) {
	s := cleanCapture()
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32)).Public().(ed25519.PublicKey)
	// The wrong key on file: every head fails, the genesis is not the unit's.
	r := verify(t, VerifyOptions{Keys: map[string][]ed25519.PublicKey{"350582-0001/gate-01": {other}}}, s.Out)
	if got := kinds(r); !slices.Equal(got, []Kind{KindBadGenesis, KindHeadBadSig, KindKeyChanged, KindNoHead}) { // every stream from an untrusted genesis
		t.Fatalf("wrong key: %v\n%s", got, text(r))
	}
	// A rotated key on file (old and new): fine.
	keys := map[string][]ed25519.PublicKey{"350582-0001/gate-01": {other, testKey().Public().(ed25519.PublicKey)}}
	if r := verify(t, VerifyOptions{Keys: keys}, s.Out); !r.OK {
		t.Fatalf("two keys:\n%s", text(r))
	}
	// No status and no key: nothing proves the genesis or the tail.
	recs := filterOut(s.Out, "status")
	if got := kinds(verify(t, VerifyOptions{}, recs)); !slices.Equal(got, []Kind{KindNoKey}) {
		t.Fatalf("no key: %v", got)
	}
	// A key but no status and no queue_loss notice: the tail is unproven.
	if got := kinds(verify(t, VerifyOptions{Keys: keys}, filterOut(recs, "queue"))); !slices.Equal(got, []Kind{KindNoHead}) {
		t.Fatalf("no head: %v", got)
	}
}

func TestVerifyNothing(t *testing.T) {
	r := verify(t, VerifyOptions{}, []msg{mk("other/app/x", []byte("1")), mk("sentinel/v1/v/d/cmd/open", []byte("{}"))})
	if r.OK || r.Ignored != 2 || !strings.Contains(text(r), "nothing to verify") {
		t.Fatalf("empty:\n%s", text(r))
	}
}

// An earlier run's state: the next capture continues from it, and a unit that started
// again is named even though the old records are not in the new capture.
func TestVerifyState(t *testing.T) {
	s := cleanCapture()
	r1 := verify(t, VerifyOptions{}, s.Out)
	st := r1.NextState(nil)
	if u := st.Units["350582-0001/gate-01"]; u == nil || u.Streams["passage"].Verified.Seq != 10 || u.Streams["passage"].First == nil || len(u.Keys) != 1 {
		t.Fatalf("state: %+v", u)
	}
	n := len(s.Out)
	s.Records("passage", 3)
	s.Status(false)
	if r := verify(t, VerifyOptions{State: st}, s.Out[n:]); !r.OK || r.Units[0].KeySource != KeyFromState {
		t.Fatalf("continued:\n%s", text(r))
	}
	// Continued, but a record between the runs deleted.
	cont := slices.DeleteFunc(slices.Clone(s.Out[n:]), func(m msg) bool { return isSeq(m, "passage", 11) })
	if got := kinds(verify(t, VerifyOptions{State: st}, cont)); !slices.Equal(got, []Kind{KindGap}) {
		t.Fatalf("gap across runs: %v", got)
	}
	// Reinstalled: a fresh database starts again from the genesis.
	fresh := newSim(testKey())
	fresh.NextID = 1000
	fresh.Status(false)
	fresh.Records("passage", 2)
	fresh.Status(false)
	if got := kinds(verify(t, VerifyOptions{State: st}, fresh.Out)); !slices.Contains(got, KindRestarted) || !slices.Contains(got, KindHeadBackwards) {
		t.Fatalf("reinstall across runs: %v", got)
	}
}

func findSeq(out []msg, stream string, seq int64) int {
	i := chaintest.Find(out, stream, seq)
	if i < 0 {
		panic(fmt.Sprintf("no %s seq %d", stream, seq))
	}
	return i
}

func isSeq(m msg, stream string, seq int64) bool { return chaintest.IsSeq(m, stream, seq) }

// findStatus returns the index of the n-th status (from 1).
func findStatus(out []msg, n int) int {
	for i, m := range out {
		if strings.HasSuffix(m.Topic, "/status") {
			if n--; n == 0 {
				return i
			}
		}
	}
	panic("no such status")
}

func filterOut(out []msg, stream string) []msg {
	return slices.DeleteFunc(slices.Clone(out), func(m msg) bool { return strings.HasSuffix(m.Topic, "/"+stream) })
}

func mustCheck(p []byte) Record {
	r, err := Check(p)
	if err != nil {
		panic(err)
	}
	return r
}

// Hostile seqs: a record or a signed head may claim any seq; the verifier neither walks seq
// by seq to it nor overflows; seqs beyond 2^53 are malformed.
func TestVerifyHostileSeqs(t *testing.T) {
	s := cleanCapture()
	s.Seq["passage"] = MaxSeq - 1
	s.Record("passage") // hash-valid: anyone can chain a record; seq 2^53
	s.Status(false)     // and a unit that signs a head there
	done := make(chan *Report)
	go func() { done <- verify(t, VerifyOptions{}, s.Out) }()
	var r *Report
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the verifier walks the seqs one by one")
	}
	if got := kinds(r); !slices.Equal(got, []Kind{KindBrokenLink, KindGap}) || r.Units[0].Streams[2].Missing != MaxSeq-11 {
		t.Fatalf("%v\n%s", got, text(r))
	}
	big := mk(s.Topic("passage"), []byte(`{"id":"x","seq":9007199254740994,"prev":"`+strings.Repeat("0", 64)+`","hash":"`+strings.Repeat("0", 64)+`"}`))
	if got := kinds(verify(t, VerifyOptions{}, cleanCapture().Out, []msg{big})); !slices.Equal(got, []Kind{KindMalformed}) {
		t.Fatalf("seq past 2^53: %v", got)
	}
}

// records.chain_hash: sm3, and a unit whose setting changed from one record to the next:
// each record names its algorithm, the genesis is the first record's.
func TestVerifySM3AndSwitch(t *testing.T) {
	s := newSim(testKey())
	s.Unit.Alg = SM3
	s.Status(false)
	s.Records("passage", 3)
	s.Unit.Alg = SHA256
	s.Records("passage", 2)
	s.Status(false)
	r := verify(t, VerifyOptions{}, s.Out)
	if !r.OK || r.Units[0].Streams[0].VerifiedSeq != 5 || r.Units[0].Streams[0].StartsFrom != "genesis" {
		t.Fatalf("sm3, then sha256:\n%s", text(r))
	}
	if !bytes.Contains(s.Out[1].Payload, []byte(`"hash_alg":"sm3"`)) || bytes.Contains(s.Out[4].Payload, []byte(`hash_alg`)) {
		t.Fatalf("hash_alg: %s / %s", s.Out[1].Payload, s.Out[4].Payload)
	}
	// Claiming the other algorithm for a record is an edit.
	out := slices.Clone(s.Out)
	out[2] = mk(out[2].Topic, bytes.Replace(out[2].Payload, []byte(`"hash_alg":"sm3",`), nil, 1))
	if got := kinds(verify(t, VerifyOptions{}, out)); !slices.Equal(got, []Kind{KindHashMismatch}) {
		t.Fatalf("alg dropped: %v", got)
	}
}
