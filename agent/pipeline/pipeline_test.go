package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/pipeline"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/queue/queuetest"
	"github.com/sentinel-edge/sentinel/verify"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var unit = record.Unit{Prefix: "t", Venue: "v", Device: "d"}

// order records the sequence of side effects across the fakes.
type order struct {
	mu     sync.Mutex
	events []string
}

func (o *order) add(e string) { o.mu.Lock(); o.events = append(o.events, e); o.mu.Unlock() }

func (o *order) get() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.events)
}

// store appends to an in-memory outbox and notes the commit.
type store struct {
	o  *order
	ob *queuetest.Outbox
}

func (s store) AppendID(ctx context.Context, stream, topic, id string, build func(int64, string) ([]byte, error)) (queue.Entry, error) {
	e, err := s.ob.AppendID(ctx, stream, topic, id, build)
	if err != nil {
		s.o.add("append-failed")
		return e, err
	}
	s.o.add("commit")
	return e, nil
}

// barrier is a lane with or without a barrier, in gate mode normal.
type barrier struct {
	o       *order
	present bool
}

func (b barrier) Plan(pass bool) (string, string) {
	switch {
	case !b.present:
		return record.GateNoBarrier, ""
	case pass:
		return record.GateOpened, ""
	}
	return record.GateNotOpened, ""
}

func (b barrier) Open(context.Context) (time.Duration, error) {
	b.o.add("open")
	return time.Second, nil
}

type fixed verify.Decision

func (d fixed) Decide(context.Context, verify.Credential, string) verify.Decision {
	return verify.Decision(d)
}

var (
	pass = fixed{Verdict: verify.Pass, Reason: verify.ReasonOK, Mode: verify.ModeOnline,
		Subject: verify.Identity{IDNumber: "350582199001011231", Name: "张三"}, PolicyHash: "sha256:x"}
	deny = fixed{Verdict: verify.Deny, Reason: verify.ReasonHealthCodeRed, Mode: verify.ModeOnline}
)

func TestCommitBeforeBarrier(t *testing.T) {
	tests := []struct {
		name      string
		decider   pipeline.Decider
		barrier   bool
		appendErr error
		want      []string
		gate      string
	}{
		{"pass opens after commit", pass, true, nil, []string{"commit", "open", "observed"}, record.GateOpened},
		{"deny never opens", deny, true, nil, []string{"commit", "observed"}, record.GateNotOpened},
		{"no barrier", pass, false, nil, []string{"commit", "observed"}, record.GateNoBarrier},
		{"store failure still decides", pass, true, errors.New("disk full"), []string{"append-failed", "open", "observed"}, record.GateOpened},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &order{}
			ob := queuetest.New()
			if tt.appendErr != nil {
				ob.Fail = func(string) error { return tt.appendErr }
			}
			var seen []pipeline.Outcome
			p := pipeline.New(pipeline.Options{Unit: unit, Decider: tt.decider, Store: store{o, ob}, Barrier: barrier{o, tt.barrier}, Log: quiet(),
				Observers: []pipeline.Observer{pipeline.ObserverFunc(func(out pipeline.Outcome) { o.add("observed"); seen = append(seen, out) })}})
			ps, err := p.Handle(context.Background(), verify.Credential{Kind: verify.KindQR, QRToken: "HC-1"}, time.Now())
			if (err != nil) != (tt.appendErr != nil) {
				t.Fatalf("Handle err = %v", err)
			}
			if got := o.get(); !slices.Equal(got, tt.want) {
				t.Errorf("side effects %v, want %v", got, tt.want)
			}
			if ps.Record.Gate != tt.gate || len(seen) != 1 || seen[0].Committed != (tt.appendErr == nil) {
				t.Errorf("gate %q, want %q; observed %+v", ps.Record.Gate, tt.gate, seen)
			}
			if tt.appendErr != nil {
				if p.Counters().Lost != 1 {
					t.Errorf("lost = %d, want 1", p.Counters().Lost)
				}
				return
			}
			e := ob.Entries(record.StreamPassage)[0]
			var r record.Passage
			if err := json.Unmarshal(e.Payload, &r); err != nil {
				t.Fatal(err)
			}
			if r.Seq != 1 || r.ID != ps.Record.ID || e.Topic != "t/v/d/passage" || r.Device != "d" || r.Venue != "v" {
				t.Errorf("stored %+v on %s", r, e.Topic)
			}
			if tt.decider == pass && (r.Subject.ID != "3505**********1231" || r.Subject.Name != "张*") {
				t.Errorf("subject %+v is not masked as expected", r.Subject)
			}
			if strings.Contains(string(e.Payload), "350582199001011231") {
				t.Error("the record carries the ID number")
			}
		})
	}
}

// step completes a card read with a face, or decides without the platform.
type step struct {
	o     *order
	face  []byte
	early *verify.Decision
}

func (s step) Prepare(_ context.Context, c verify.Credential) (verify.Credential, *verify.Decision) {
	s.o.add("prepare")
	if s.early != nil {
		return c, s.early
	}
	c.Kind, c.FaceJPEG = verify.KindFace, s.face
	return c, nil
}

type recordingDecider struct {
	o   *order
	got verify.Credential
}

func (d *recordingDecider) Decide(_ context.Context, c verify.Credential, _ string) verify.Decision {
	d.o.add("decide")
	d.got = c
	dec := verify.Decision(pass)
	dec.Credential = c.Kind
	return dec
}

type sealer struct{ faces [][]byte }

func (s *sealer) Seal(sub *record.Subject, who verify.Identity, face []byte) {
	if len(who.IDNumber) >= 4 {
		sub.Sealed = "sealed:" + who.IDNumber[:4]
	}
	s.faces = append(s.faces, slices.Clone(face))
}

type auditor struct{ creds []verify.Credential }

func (a *auditor) Decided(_ context.Context, c verify.Credential, _ string, _ verify.Decision) {
	a.creds = append(a.creds, c)
}

// Steps run before the decider, in order; an early decision skips it; the face a step adds
// is sealed (only when the face decided), kept from the auditor, and zeroed once the passage
// is recorded.
func TestStepsSealAndFace(t *testing.T) {
	o := &order{}
	face := []byte{0xFF, 0xD8, 1, 2, 3}
	dec := &recordingDecider{o: o}
	se, au := &sealer{}, &auditor{}
	ob := queuetest.New()
	p := pipeline.New(pipeline.Options{Unit: unit, Steps: []pipeline.Step{step{o: o, face: face}}, Decider: dec, Store: store{o, ob},
		Barrier: barrier{o, true}, Sealer: se, Auditor: au, Log: quiet()})
	card := verify.Credential{Kind: verify.KindIDCard, IDNumber: "350582199001011231", Name: "张三"}
	out, err := p.Handle(context.Background(), card, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := o.get(); !slices.Equal(got, []string{"prepare", "decide", "commit", "open"}) {
		t.Errorf("order %v", got)
	}
	if dec.got.Kind != verify.KindFace || len(dec.got.FaceJPEG) == 0 {
		t.Errorf("the decider got %s with %d face bytes", dec.got.Kind, len(dec.got.FaceJPEG))
	}
	if out.Record.Credential != verify.KindFace || out.Record.Subject.Sealed != "sealed:3505" {
		t.Errorf("record %+v", out.Record)
	}
	if len(se.faces) != 1 || !slices.Equal(se.faces[0], []byte{0xFF, 0xD8, 1, 2, 3}) {
		t.Errorf("sealed faces %v", se.faces)
	}
	if !slices.Equal(face, make([]byte, len(face))) {
		t.Errorf("the face was not zeroed after its passage: %v", face)
	}
	if len(au.creds) != 1 || au.creds[0].Kind != verify.KindIDCard || au.creds[0].FaceJPEG != nil {
		t.Errorf("auditor got %+v, want the card as read, without a face", au.creds)
	}

	// A step's own decision: the decider is not asked, and no face is sealed.
	o2 := &order{}
	early := verify.Decision{Verdict: verify.Deny, Reason: verify.ReasonFaceUnavailable, Mode: verify.ModeOnline, Credential: verify.KindFace}
	dec2, se2 := &recordingDecider{o: o2}, &sealer{}
	p2 := pipeline.New(pipeline.Options{Unit: unit, Steps: []pipeline.Step{step{o: o2, early: &early}}, Decider: dec2, Store: store{o2, queuetest.New()},
		Barrier: barrier{o2, true}, Sealer: se2, Log: quiet()})
	out2, _ := p2.Handle(context.Background(), card, time.Now())
	if got := o2.get(); !slices.Equal(got, []string{"prepare", "commit"}) || out2.Record.Reason != verify.ReasonFaceUnavailable {
		t.Errorf("order %v, reason %s", got, out2.Record.Reason)
	}
	if len(se2.faces) != 1 || se2.faces[0] != nil {
		t.Errorf("sealed a face for a passage the face did not decide: %v", se2.faces)
	}
}

// source feeds tokens as QR credentials.
type source chan string

func (s source) String() string { return "test source" }
func (s source) Run(ctx context.Context, emit func(verify.Credential, time.Time)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case tok := <-s:
			emit(verify.Credential{Kind: verify.KindQR, QRToken: tok}, time.Now())
		}
	}
}

func TestRunHandlesScansInOrder(t *testing.T) {
	got := make(chan pipeline.Outcome, 8)
	p := pipeline.New(pipeline.Options{Unit: unit, Decider: deny, Store: queuetest.New(), Barrier: barrier{&order{}, true}, Log: quiet(),
		Observers: []pipeline.Observer{pipeline.ObserverFunc(func(o pipeline.Outcome) { got <- o })}})
	sc := make(source)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, sc) }()
	for range 3 {
		sc <- "HC-1"
	}
	for i := int64(1); i <= 3; i++ {
		select {
		case ps := <-got:
			if ps.Record.Seq != i {
				t.Errorf("passage %d has seq %d", i, ps.Record.Seq)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("passage %d not handled within 5s", i)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v on cancel", err)
	}
	if c := p.Counters(); c.Passages != 3 || p.LastActive().IsZero() {
		t.Errorf("counters %+v, last active %v", c, p.LastActive())
	}
}

// failingSource stops at once with an error.
type failingSource struct{}

func (failingSource) String() string { return "failing source" }
func (failingSource) Run(context.Context, func(verify.Credential, time.Time)) error {
	return errors.New("unplugged for good")
}

// A source that fails stops the pipeline, and the other sources are stopped too.
func TestRunStopsWhenASourceFails(t *testing.T) {
	p := pipeline.New(pipeline.Options{Unit: unit, Decider: deny, Store: queuetest.New(), Barrier: barrier{&order{}, true}, Log: quiet()})
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background(), make(source), failingSource{}) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "failing source") {
			t.Errorf("Run returned %v, want the failing source's error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s after a source failed")
	}
}

// TestFaceRecord (issue #12): a face passage's record says how the face was checked: search
// (face only, with the platform's score) or card (1:1), liveness none; other credentials
// carry no face field. The face picture is zeroed after the passage.
func TestFaceRecord(t *testing.T) {
	score := 0.93
	found := pass
	found.Credential, found.FaceScore = verify.KindFace, &score
	notFound := fixed{Verdict: verify.Deny, Reason: verify.ReasonFaceNotFound, Mode: verify.ModeOnline, Credential: verify.KindFace}
	tests := []struct {
		name    string
		d       fixed
		cred    verify.Credential
		want    string // the stored record's face field, as JSON
		reason  string
		subject bool
	}{
		{"search found", found, verify.Credential{Kind: verify.KindFace, FaceJPEG: []byte{0xFF, 0xD8, 1, 2}}, `{"check":"search","score":0.93,"liveness":"none"}`, verify.ReasonOK, true},
		{"search not found", notFound, verify.Credential{Kind: verify.KindFace, FaceJPEG: []byte{0xFF, 0xD8, 1, 2}}, `{"check":"search","liveness":"none"}`, verify.ReasonFaceNotFound, false},
		{"card 1:1", fixed(func() verify.Decision { d := verify.Decision(pass); d.Credential = verify.KindFace; return d }()),
			verify.Credential{Kind: verify.KindFace, IDNumber: "350582199001011231", FaceJPEG: []byte{0xFF, 0xD8, 1, 2}}, `{"check":"card","liveness":"none"}`, verify.ReasonOK, true},
		{"qr", pass, verify.Credential{Kind: verify.KindQR, QRToken: "HC-1"}, ``, verify.ReasonOK, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &order{}
			ob := queuetest.New()
			p := pipeline.New(pipeline.Options{Unit: unit, Decider: tt.d, Store: store{o, ob}, Barrier: barrier{o, true}, Log: quiet()})
			face := tt.cred.FaceJPEG
			if _, err := p.Handle(context.Background(), tt.cred, time.Now()); err != nil {
				t.Fatal(err)
			}
			var r struct {
				Credential string          `json:"credential"`
				Reason     string          `json:"reason"`
				Face       json.RawMessage `json:"face"`
				Subject    record.Subject  `json:"subject"`
			}
			if err := json.Unmarshal(ob.Entries(record.StreamPassage)[0].Payload, &r); err != nil {
				t.Fatal(err)
			}
			if string(r.Face) != tt.want || r.Reason != tt.reason || (r.Subject.ID != "") != tt.subject {
				t.Errorf("credential %s reason %s face %s subject %q, want face %s reason %s", r.Credential, r.Reason, r.Face, r.Subject.ID, tt.want, tt.reason)
			}
			if len(face) > 0 && !slices.Equal(face, make([]byte, len(face))) {
				t.Error("the face picture was not zeroed after the passage")
			}
		})
	}
}

// failAfterBuild numbers the record, as the outbox does inside its transaction, then fails
// the commit (a full disk).
type failAfterBuild struct{}

func (failAfterBuild) AppendID(_ context.Context, _, _, _ string, build func(int64, string) ([]byte, error)) (queue.Entry, error) {
	if _, err := build(44, "t/v/d/passage"); err != nil {
		return queue.Entry{}, err
	}
	return queue.Entry{}, errors.New("queue: commit: database or disk is full")
}

// Found with the disk full (2026-12-02): each passage that was NOT stored was still logged
// with the seq its rolled-back transaction had given it, so 358 passages shared "seq=44"
// with the one stored later. An unstored passage is logged stored=false, without a seq, and
// its record keeps none.
func TestUnstoredPassageLoggedWithoutSeq(t *testing.T) {
	var logs strings.Builder
	lg := slog.New(slog.NewTextHandler(&logs, nil))
	p := pipeline.New(pipeline.Options{Unit: unit, Decider: deny, Store: failAfterBuild{}, Barrier: barrier{&order{}, true}, Log: lg})
	ps, err := p.Handle(context.Background(), verify.Credential{Kind: verify.KindQR, QRToken: "HC-1"}, time.Now())
	if err == nil {
		t.Fatal("Handle did not report the failed store")
	}
	if ps.Record.Seq != 0 {
		t.Errorf("the unstored record keeps seq %d", ps.Record.Seq)
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "msg=passage ") {
			line = l
		}
	}
	if line == "" || strings.Contains(line, "seq=") || !strings.Contains(line, "stored=false") {
		t.Errorf("the passage line %q, want stored=false and no seq", line)
	}
}
