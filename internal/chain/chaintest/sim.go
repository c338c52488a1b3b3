package chaintest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sentinel-edge/sentinel/internal/chain"
)

// Msg is one captured message.
type Msg struct {
	Topic   string
	Payload []byte
}

// Key returns the deterministic key of seed byte b (the worked example of docs/records.md
// uses the seed 00 01 02 ... 1f: Key(0) is not that one; see ExampleKey).
func Key(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

// ExampleKey is the key of the worked example in docs/records.md: the seed 00 01 ... 1f.
func ExampleKey() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// Sim is a unit. Its fields may be changed between calls (to fork a stream, roll it back).
type Sim struct {
	Unit   *chain.Unit
	Prefix string
	Seq    map[string]int64
	Prev   map[string][]byte
	Out    []Msg
	Clock  time.Time
	NextID int
}

// New returns a unit 350582-0001/gate-01 with key.
func New(key ed25519.PrivateKey) *Sim {
	return &Sim{Unit: &chain.Unit{Venue: "350582-0001", Device: "gate-01", Alg: chain.SHA256, Key: key}, Prefix: "sentinel/v1",
		Seq: map[string]int64{}, Prev: map[string][]byte{}, Clock: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
}

// Topic returns the unit's topic for kind (a stream or "status").
func (s *Sim) Topic(kind string) string {
	return s.Prefix + "/" + s.Unit.Venue + "/" + s.Unit.Device + "/" + kind
}

func (s *Sim) ts() string {
	s.Clock = s.Clock.Add(time.Second)
	return s.Clock.Format("2006-01-02T15:04:05.000Z")
}

// Build returns the next record of stream as the agent builds it, not yet chained.
func (s *Sim) Build(stream string) []byte {
	s.Seq[stream]++
	s.NextID++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.NextID)
	if stream == "audit" {
		return fmt.Appendf(nil, `{"id":%q,"seq":%d,"ts":%q,"device":%q,"venue":%q,"interface":"qr","latency_ms":%d.5,"result":"ok"}`,
			id, s.Seq[stream], s.ts(), s.Unit.Device, s.Unit.Venue, s.NextID%40)
	}
	return fmt.Appendf(nil, `{"id":%q,"seq":%d,"ts":%q,"device":%q,"venue":%q,"verdict":"pass","reason":"ok","subject":{"id":"3505**********1231","name":"张*"}}`,
		id, s.Seq[stream], s.ts(), s.Unit.Device, s.Unit.Venue)
}

// Record appends (and returns) the next chained record of stream.
func (s *Sim) Record(stream string) Msg {
	chained, hash, err := s.Unit.Link(stream, s.Prev[stream], s.Build(stream))
	if err != nil {
		panic(err)
	}
	s.Prev[stream] = hash
	m := Msg{s.Topic(stream), chained}
	s.Out = append(s.Out, m)
	return m
}

// Records appends n records of stream.
func (s *Sim) Records(stream string, n int) {
	for range n {
		s.Record(stream)
	}
}

// Head returns where the unit's streams stand.
func (s *Sim) Head() chain.Head {
	h := chain.Head{}
	for st, p := range s.Prev {
		h[st] = chain.NewStreamHead(s.Seq[st], p)
	}
	return h
}

// Status appends a status carrying the signed head (will: as the last will says it).
func (s *Sim) Status(will bool) Msg {
	ts := s.ts()
	h := s.Head()
	sig, err := s.Unit.SignHead(ts, h)
	if err != nil {
		panic(err)
	}
	b, _ := json.Marshal(map[string]any{"online": !will, "will": will, "ts": ts, "device": s.Unit.Device, "venue": s.Unit.Venue,
		"chain_key": s.Unit.PublicKey(), "head": h, "head_sig": sig, "queue_pending": 0})
	m := Msg{s.Topic("status"), b}
	s.Out = append(s.Out, m)
	return m
}

// Notice appends a queue_loss notice whose signed head is that of the streams before it.
func (s *Sim) Notice(lost int) Msg {
	h := s.Head()
	s.Seq["queue"]++
	s.NextID++
	ts := s.ts()
	sig, err := s.Unit.SignHead(ts, h)
	if err != nil {
		panic(err)
	}
	hb, _ := json.Marshal(h)
	p := fmt.Appendf(nil, `{"kind":"queue_loss","id":"00000000-0000-4000-8000-%012d","seq":%d,"ts":%q,"lost":%d,"dropped_oldest":%d,"head":%s,"head_sig":%q}`,
		s.NextID, s.Seq["queue"], ts, lost, lost, hb, sig)
	chained, hash, err := s.Unit.Link("queue", s.Prev["queue"], p)
	if err != nil {
		panic(err)
	}
	s.Prev["queue"] = hash
	m := Msg{s.Topic("queue"), chained}
	s.Out = append(s.Out, m)
	return m
}

// Clean returns a unit's traffic without tampering: statuses, 10 passages, 5 audit rows,
// 2 events and a queue_loss notice.
func Clean() *Sim {
	s := New(ExampleKey())
	s.Status(false)
	s.Records("passage", 5)
	s.Records("audit", 5)
	s.Status(false)
	s.Records("passage", 5)
	s.Records("event", 2)
	s.Notice(0)
	s.Status(false)
	return s
}

// WriteCapture writes msgs as `mosquitto_sub -F '%t %p'` does: topic, a space, the payload,
// a newline.
func WriteCapture(w io.Writer, msgs []Msg) error {
	var b bytes.Buffer
	for _, m := range msgs {
		b.WriteString(m.Topic)
		b.WriteByte(' ')
		b.Write(m.Payload)
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Find returns the index of the record of stream with seq in msgs, or -1.
func Find(msgs []Msg, stream string, seq int64) int {
	for i, m := range msgs {
		if IsSeq(m, stream, seq) {
			return i
		}
	}
	return -1
}

// IsSeq reports whether m is the record of stream with seq (whose hash checks).
func IsSeq(m Msg, stream string, seq int64) bool {
	if !strings.HasSuffix(m.Topic, "/"+stream) {
		return false
	}
	r, err := chain.Check(m.Payload)
	return err == nil && r.Seq == seq
}
