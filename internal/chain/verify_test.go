package chain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// msg is one captured message.
type msg struct {
	topic   string
	payload []byte
}

// sim plays a unit as the agent will: chained records per stream, statuses with signed
// heads, queue_loss notices, everything as captured messages.
type sim struct {
	u      *Unit
	prefix string
	seq    map[string]int64
	prev   map[string][]byte
	out    []msg
	clock  time.Time
	nextID int
}

func newSim(key ed25519.PrivateKey) *sim {
	return &sim{u: &Unit{Venue: "350582-0001", Device: "gate-01", Alg: SHA256, Key: key}, prefix: "sentinel/v1",
		seq: map[string]int64{}, prev: map[string][]byte{}, clock: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
}

func (s *sim) topic(kind string) string {
	return s.prefix + "/" + s.u.Venue + "/" + s.u.Device + "/" + kind
}

func (s *sim) ts() string {
	s.clock = s.clock.Add(time.Second)
	return s.clock.Format("2006-01-02T15:04:05.000Z")
}

// build returns the next record of stream as the agent builds it, not yet chained.
func (s *sim) build(stream string) []byte {
	s.seq[stream]++
	s.nextID++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.nextID)
	switch stream {
	case "audit":
		return fmt.Appendf(nil, `{"id":%q,"seq":%d,"ts":%q,"device":%q,"venue":%q,"interface":"qr","latency_ms":%d.5,"result":"ok"}`,
			id, s.seq[stream], s.ts(), s.u.Device, s.u.Venue, s.nextID%40)
	default:
		return fmt.Appendf(nil, `{"id":%q,"seq":%d,"ts":%q,"device":%q,"venue":%q,"verdict":"pass","reason":"ok","subject":{"id":"3505**********1231","name":"张*"}}`,
			id, s.seq[stream], s.ts(), s.u.Device, s.u.Venue)
	}
}

// record appends (and returns) the next chained record of stream.
func (s *sim) record(stream string) msg {
	chained, hash, err := s.u.Link(stream, s.prev[stream], s.build(stream))
	if err != nil {
		panic(err)
	}
	s.prev[stream] = hash
	m := msg{s.topic(stream), chained}
	s.out = append(s.out, m)
	return m
}

func (s *sim) records(stream string, n int) {
	for range n {
		s.record(stream)
	}
}

func (s *sim) head() Head {
	h := Head{}
	for st, p := range s.prev {
		h[st] = NewStreamHead(s.seq[st], p)
	}
	return h
}

// status appends a status carrying the head (will: the last will the broker publishes).
func (s *sim) status(will bool) msg {
	ts := s.ts()
	h := s.head()
	sig, err := s.u.SignHead(ts, h)
	if err != nil {
		panic(err)
	}
	b, _ := json.Marshal(map[string]any{"online": !will, "will": will, "ts": ts, "device": s.u.Device, "venue": s.u.Venue,
		"chain_key": s.u.PublicKey(), "head": h, "head_sig": sig, "queue_pending": 0})
	m := msg{s.topic("status"), b}
	s.out = append(s.out, m)
	return m
}

// notice appends a queue_loss notice with a signed head (of the streams before it).
func (s *sim) notice(lost int) msg {
	h := s.head() // the streams before the notice
	s.seq["queue"]++
	s.nextID++
	ts := s.ts()
	sig, _ := s.u.SignHead(ts, h)
	hb, _ := json.Marshal(h)
	p := fmt.Appendf(nil, `{"kind":"queue_loss","id":"00000000-0000-4000-8000-%012d","seq":%d,"ts":%q,"lost":%d,"dropped_oldest":%d,"head":%s,"head_sig":%q}`,
		s.nextID, s.seq["queue"], ts, lost, lost, hb, sig)
	chained, hash, err := s.u.Link("queue", s.prev["queue"], p)
	if err != nil {
		panic(err)
	}
	s.prev["queue"] = hash
	m := msg{s.topic("queue"), chained}
	s.out = append(s.out, m)
	return m
}

func verify(t *testing.T, opts VerifyOptions, msgs ...[]msg) *Report {
	t.Helper()
	v := NewVerifier(opts)
	for _, list := range msgs {
		for _, m := range list {
			v.Add(m.topic, m.payload)
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

// cleanCapture is a unit's traffic without tampering: three streams, heartbeats between.
func cleanCapture() *sim {
	s := newSim(testKey())
	s.status(false)
	s.records("passage", 5)
	s.records("audit", 5)
	s.status(false)
	s.records("passage", 5)
	s.records("event", 2)
	s.notice(0)
	s.status(false)
	return s
}

func TestVerifyClean(t *testing.T) {
	s := cleanCapture()
	r := verify(t, VerifyOptions{}, s.out)
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
	if r := verify(t, VerifyOptions{Keys: keys}, s.out); !r.OK || r.TOFU || r.Units[0].KeySource != KeyFromFile {
		t.Fatalf("with --keys:\n%s", text(r))
	}
}

// At-least-once delivery: records and statuses again, in another order, and the backlog
// overtaken by live records; all fine.
func TestVerifyDuplicatesAndOrder(t *testing.T) {
	s := cleanCapture()
	again := append(slices.Clone(s.out[3:9]), s.out...) // statuses again too: redelivered, or captures joined
	slices.Reverse(again[:6])
	r := verify(t, VerifyOptions{}, s.out, again)
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
	n := len(s.out)
	s.status(false)
	s.records("passage", 3)
	s.status(false)
	r := verify(t, VerifyOptions{}, s.out[n:])
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
		tamper func(s *sim) []msg
		want   []Kind
	}{
		{"one byte of a stored payload edited", func(s *sim) []msg {
			out := slices.Clone(s.out)
			i := findSeq(out, "passage", 7)
			out[i].payload = bytes.Replace(out[i].payload, []byte(`"verdict":"pass"`), []byte(`"verdict":"dass"`), 1)
			return out
		}, []Kind{KindHashMismatch}},
		{"edited after a first delivery, resent", func(s *sim) []msg {
			i := findSeq(s.out, "passage", 7)
			edited := msg{s.out[i].topic, bytes.Replace(s.out[i].payload, []byte(`"reason":"ok"`), []byte(`"reason":"no"`), 1)}
			return append(slices.Clone(s.out), edited)
		}, []Kind{KindHashMismatch}},
		{"a record deleted from the outbox before delivery", func(s *sim) []msg {
			return slices.Delete(slices.Clone(s.out), findSeq(s.out, "passage", 4), findSeq(s.out, "passage", 4)+1)
		}, []Kind{KindGap}},
		{"the last records deleted before delivery (the head vouches for them)", func(s *sim) []msg {
			out := slices.Clone(s.out)
			return slices.DeleteFunc(out, func(m msg) bool { return isSeq(m, "passage", 9) || isSeq(m, "passage", 10) })
		}, []Kind{KindGap}},
		{"deleted and the rest renumbered, rechained with the unit's code", func(s *sim) []msg {
			// The outbox rewritten from seq 4 on: the chain is consistent again, but the
			// heads signed before name the old records.
			r := newSim(testKey())
			r.nextID = 100
			for q := int64(1); q <= 3; q++ {
				r.out = append(r.out, s.out[findSeq(s.out, "passage", q)])
			}
			r.seq["passage"], r.prev["passage"] = 3, mustCheck(s.out[findSeq(s.out, "passage", 3)].payload).Hash
			r.records("passage", 6)
			return append(filterOut(s.out, "passage"), r.out...)
		}, []Kind{KindGap, KindHeadMismatch}},
		{"an old record replayed with a new seq", func(s *sim) []msg {
			old := s.out[findSeq(s.out, "passage", 2)]
			replay := bytes.Replace(old.payload, []byte(`"seq":2,`), []byte(`"seq":11,`), 1)
			return append(slices.Clone(s.out), msg{old.topic, replay})
		}, []Kind{KindHashMismatch, KindReplayed}},
		{"an old record replayed with a new seq, rechained properly", func(s *sim) []msg {
			old := mustCheck(s.out[findSeq(s.out, "passage", 2)].payload)
			var v map[string]any
			_ = json.Unmarshal(s.out[findSeq(s.out, "passage", 2)].payload, &v)
			delete(v, "prev")
			delete(v, "hash")
			v["seq"] = 11
			b, _ := json.Marshal(v)
			chained, _, err := s.u.Link("passage", s.prev["passage"], b)
			if err != nil || old.ID == "" {
				t.Fatal(err)
			}
			return append(slices.Clone(s.out), msg{s.topic("passage"), chained})
		}, []Kind{KindReplayed}},
		{"reinstalled with a fresh database (same key)", func(s *sim) []msg {
			fresh := newSim(testKey())
			fresh.nextID, fresh.clock = 1000, s.clock
			fresh.status(false)
			fresh.records("passage", 3)
			fresh.status(false)
			return append(slices.Clone(s.out), fresh.out...)
		}, []Kind{KindHeadBackwards, KindRestarted}},
		{"reinstalled and re-provisioned (a new key)", func(s *sim) []msg {
			fresh := newSim(other)
			fresh.nextID, fresh.clock = 1000, s.clock
			fresh.status(false)
			fresh.records("passage", 3)
			return append(slices.Clone(s.out), fresh.out...)
		}, []Kind{KindBadGenesis, KindHeadBadSig, KindKeyChanged, KindRestarted}},
		{"a fork: two records chained to one", func(s *sim) []msg {
			b := &sim{u: s.u, prefix: s.prefix, seq: map[string]int64{"passage": 9}, prev: map[string][]byte{}, clock: s.clock, nextID: 500}
			b.prev["passage"] = mustCheck(s.out[findSeq(s.out, "passage", 9)].payload).Hash
			b.record("passage")
			return append(slices.Clone(s.out), b.out...)
		}, []Kind{KindFork}},
		{"a record replaced by another with a random prev", func(s *sim) []msg {
			out := slices.Clone(s.out)
			i := findSeq(out, "passage", 6)
			var v map[string]any
			_ = json.Unmarshal(out[i].payload, &v)
			delete(v, "prev")
			delete(v, "hash")
			v["verdict"] = "deny"
			b, _ := json.Marshal(v)
			chained, _, _ := Link(SHA256, bytes.Repeat([]byte{0xee}, 32), b)
			out[i].payload = chained
			return out
		}, []Kind{KindBrokenLink}},
		{"a newer head signed behind an older one", func(s *sim) []msg {
			s.seq["passage"] = 4 // the unit's database rolled back to seq 4
			s.prev["passage"] = mustCheck(s.out[findSeq(s.out, "passage", 4)].payload).Hash
			s.status(false)
			return s.out
		}, []Kind{KindHeadBackwards}},
		{"a head altered without the key", func(s *sim) []msg {
			out := slices.Clone(s.out)
			i := findStatus(out, 3)
			var v map[string]any
			_ = json.Unmarshal(out[i].payload, &v)
			v["head"].(map[string]any)["passage"].(map[string]any)["seq"] = 12
			out[i].payload, _ = json.Marshal(v)
			return out
		}, []Kind{KindHeadBadSig}},
		{"records of another unit on this unit's topic", func(s *sim) []msg {
			o := newSim(testKey())
			o.u.Device = "gate-02"
			m := o.record("event")
			m.topic = s.topic("event")
			return append(slices.Clone(s.out), m)
		}, []Kind{KindBadGenesis, KindMisplaced, KindReusedSeq}},
		{"records stripped of their chain", func(s *sim) []msg {
			return append(slices.Clone(s.out), msg{s.topic("passage"), []byte(`{"id":"x","seq":11,"verdict":"pass"}`)})
		}, []Kind{KindUnchained}},
		{"junk on a record topic", func(s *sim) []msg {
			return append(slices.Clone(s.out), msg{s.topic("passage"), []byte(`{"id":`)}, msg{s.topic("status"), []byte(`nope`)})
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
	s.status(false)
	will := s.status(true) // registered when the control connection came up
	s.out = s.out[:1]
	s.records("passage", 4)
	s.status(false)
	s.out = append(s.out, will)
	if r := verify(t, VerifyOptions{}, s.out); !r.OK {
		t.Fatalf("will:\n%s", text(r))
	}
}

// queue_loss notices carry signed heads too; one that goes back is named.
func TestVerifyNoticeHeads(t *testing.T) {
	s := newSim(testKey())
	s.status(false)
	s.records("passage", 3)
	s.notice(1)
	s.records("passage", 2)
	s.notice(0)
	s.status(false)
	r := verify(t, VerifyOptions{}, s.out)
	if !r.OK || r.Units[0].Heads != 4 || r.Units[0].HeadsOK != 4 {
		t.Fatalf("notices:\n%s", text(r))
	}
	// A notice whose head was altered.
	out := slices.Clone(s.out)
	i := findSeq(out, "queue", 2)
	out[i].payload = bytes.Replace(out[i].payload, []byte(`"seq":5`), []byte(`"seq":4`), 1)
	if got := kinds(verify(t, VerifyOptions{}, out)); !slices.Equal(got, []Kind{KindHashMismatch, KindHeadBadSig}) {
		t.Fatalf("altered notice: %v", got)
	}
}

func TestVerifyKeys(t *testing.T) {
	s := cleanCapture()
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32)).Public().(ed25519.PublicKey)
	// The wrong key on file: every head fails, the genesis is not the unit's.
	r := verify(t, VerifyOptions{Keys: map[string][]ed25519.PublicKey{"350582-0001/gate-01": {other}}}, s.out)
	if got := kinds(r); !slices.Equal(got, []Kind{KindBadGenesis, KindHeadBadSig, KindKeyChanged, KindNoHead}) { // every stream from an untrusted genesis
		t.Fatalf("wrong key: %v\n%s", got, text(r))
	}
	// A rotated key on file (old and new): fine.
	keys := map[string][]ed25519.PublicKey{"350582-0001/gate-01": {other, testKey().Public().(ed25519.PublicKey)}}
	if r := verify(t, VerifyOptions{Keys: keys}, s.out); !r.OK {
		t.Fatalf("two keys:\n%s", text(r))
	}
	// No status and no key: nothing proves the genesis or the tail.
	recs := filterOut(s.out, "status")
	if got := kinds(verify(t, VerifyOptions{}, recs)); !slices.Equal(got, []Kind{KindNoKey}) {
		t.Fatalf("no key: %v", got)
	}
	// A key but no status and no queue_loss notice: the tail is unproven.
	if got := kinds(verify(t, VerifyOptions{Keys: keys}, filterOut(recs, "queue"))); !slices.Equal(got, []Kind{KindNoHead}) {
		t.Fatalf("no head: %v", got)
	}
}

func TestVerifyNothing(t *testing.T) {
	r := verify(t, VerifyOptions{}, []msg{{"other/app/x", []byte("1")}, {"sentinel/v1/v/d/cmd/open", []byte("{}")}})
	if r.OK || r.Ignored != 2 || !strings.Contains(text(r), "nothing to verify") {
		t.Fatalf("empty:\n%s", text(r))
	}
}

// An earlier run's state: the next capture continues from it, and a unit that started
// again is named even though the old records are not in the new capture.
func TestVerifyState(t *testing.T) {
	s := cleanCapture()
	r1 := verify(t, VerifyOptions{}, s.out)
	st := r1.NextState(nil)
	if u := st.Units["350582-0001/gate-01"]; u == nil || u.Streams["passage"].Verified.Seq != 10 || u.Streams["passage"].First == nil || len(u.Keys) != 1 {
		t.Fatalf("state: %+v", u)
	}
	n := len(s.out)
	s.records("passage", 3)
	s.status(false)
	if r := verify(t, VerifyOptions{State: st}, s.out[n:]); !r.OK || r.Units[0].KeySource != KeyFromState {
		t.Fatalf("continued:\n%s", text(r))
	}
	// Continued, but a record between the runs deleted.
	cont := slices.DeleteFunc(slices.Clone(s.out[n:]), func(m msg) bool { return isSeq(m, "passage", 11) })
	if got := kinds(verify(t, VerifyOptions{State: st}, cont)); !slices.Equal(got, []Kind{KindGap}) {
		t.Fatalf("gap across runs: %v", got)
	}
	// Reinstalled: a fresh database starts again from the genesis.
	fresh := newSim(testKey())
	fresh.nextID = 1000
	fresh.status(false)
	fresh.records("passage", 2)
	fresh.status(false)
	if got := kinds(verify(t, VerifyOptions{State: st}, fresh.out)); !slices.Contains(got, KindRestarted) || !slices.Contains(got, KindHeadBackwards) {
		t.Fatalf("reinstall across runs: %v", got)
	}
}

func findSeq(out []msg, stream string, seq int64) int {
	for i, m := range out {
		if isSeq(m, stream, seq) {
			return i
		}
	}
	panic(fmt.Sprintf("no %s seq %d", stream, seq))
}

func isSeq(m msg, stream string, seq int64) bool {
	if !strings.HasSuffix(m.topic, "/"+stream) {
		return false
	}
	r, err := Check(m.payload)
	return err == nil && r.Seq == seq
}

// findStatus returns the index of the n-th status (from 1).
func findStatus(out []msg, n int) int {
	for i, m := range out {
		if strings.HasSuffix(m.topic, "/status") {
			if n--; n == 0 {
				return i
			}
		}
	}
	panic("no such status")
}

func filterOut(out []msg, stream string) []msg {
	return slices.DeleteFunc(slices.Clone(out), func(m msg) bool { return strings.HasSuffix(m.topic, "/"+stream) })
}

func mustCheck(p []byte) Record {
	r, err := Check(p)
	if err != nil {
		panic(err)
	}
	return r
}
