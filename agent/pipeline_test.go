package agent

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

	"github.com/sentinel-edge/sentinel/drivers/qrscan/qrscantest"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// order records the sequence of side effects across the fakes.
type order struct {
	mu     sync.Mutex
	events []string
}

func (o *order) add(e string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, e)
}

func (o *order) get() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.events...)
}

type fakeOutbox struct {
	o    *order
	seq  int64
	err  error
	recs [][]byte
}

func (f *fakeOutbox) AppendID(_ context.Context, stream, topic, id string, build func(int64, string) ([]byte, error)) (queue.Entry, error) {
	if f.err != nil {
		f.o.add("append-failed")
		return queue.Entry{}, f.err
	}
	f.seq++
	b, err := build(f.seq, id)
	if err != nil {
		return queue.Entry{}, err
	}
	f.recs = append(f.recs, b)
	f.o.add("commit")
	return queue.Entry{ID: id, Stream: stream, Topic: topic, Seq: f.seq, Payload: b}, nil
}

type fakeRelay struct{ o *order }

func (r *fakeRelay) Pulse(context.Context, time.Duration) error { r.o.add("pulse"); return nil }
func (r *fakeRelay) Halt() error                                { return nil }
func (r *fakeRelay) String() string                             { return "fake" }

type fixedDecider verify.Decision

func (d fixedDecider) Decide(context.Context, verify.Credential, string) verify.Decision {
	return verify.Decision(d)
}

func TestCommitBeforeBarrier(t *testing.T) {
	pass := fixedDecider{Verdict: verify.Pass, Reason: verify.ReasonOK, Mode: verify.ModeOnline,
		Subject: verify.Identity{IDNumber: "350582199001011231", Name: "张三"}, PolicyHash: "sha256:x"}
	deny := fixedDecider{Verdict: verify.Deny, Reason: verify.ReasonHealthCodeRed, Mode: verify.ModeOnline}
	tests := []struct {
		name      string
		decider   Decider
		relay     bool
		appendErr error
		want      []string
		gate      string
	}{
		{"pass opens after commit", pass, true, nil, []string{"commit", "pulse"}, GateOpened},
		{"deny never pulses", deny, true, nil, []string{"commit"}, GateNotOpened},
		{"no barrier", pass, false, nil, []string{"commit"}, GateNoBarrier},
		{"store failure still decides", pass, true, errors.New("disk full"), []string{"append-failed", "pulse"}, GateOpened},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &order{}
			ob := &fakeOutbox{o: o, err: tt.appendErr}
			p := &Pipeline{Device: "d", Venue: "v", Topic: "t/v/d/passage", Decider: tt.decider, Outbox: ob, Pulse: time.Second,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			if tt.relay {
				p.Relay = &fakeRelay{o: o}
			}
			ps, err := p.Handle(context.Background(), verify.Credential{Kind: verify.KindQR, QRToken: "HC-1"}, time.Now())
			if (err != nil) != (tt.appendErr != nil) {
				t.Fatalf("Handle err = %v", err)
			}
			if got := o.get(); !slices.Equal(got, tt.want) {
				t.Errorf("side effects %v, want %v", got, tt.want)
			}
			if ps.Record.Gate != tt.gate {
				t.Errorf("gate %q, want %q", ps.Record.Gate, tt.gate)
			}
			if tt.appendErr != nil {
				if p.Counters().Lost != 1 {
					t.Errorf("lost = %d, want 1", p.Counters().Lost)
				}
				return
			}
			var r Record
			if err := json.Unmarshal(ob.recs[0], &r); err != nil {
				t.Fatal(err)
			}
			if r.Seq != 1 || r.ID != ps.Record.ID {
				t.Errorf("stored seq %d id %q, want 1 and %q", r.Seq, r.ID, ps.Record.ID)
			}
			if tt.decider == pass && (r.Subject.ID != "3505**********1231" || r.Subject.Name != "张*") {
				t.Errorf("subject %+v is not masked as expected", r.Subject)
			}
		})
	}
}

func TestRunHandlesScansInOrder(t *testing.T) {
	o := &order{}
	ob := &fakeOutbox{o: o}
	got := make(chan Passage, 8)
	p := &Pipeline{Device: "d", Venue: "v", Topic: "t/v/d/passage", Decider: fixedDecider{Verdict: verify.Deny, Reason: verify.ReasonHealthCodeRed},
		Outbox: ob, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Observe: func(p Passage) { got <- p }}
	sc := qrscantest.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, QRSource{sc}) }()
	for i := 0; i < 3; i++ {
		sc.C <- "HC-1"
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
}

// failingSource stops at once with an error.
type failingSource struct{}

func (failingSource) String() string { return "failing source" }
func (failingSource) Run(context.Context, func(verify.Credential, time.Time)) error {
	return errors.New("unplugged for good")
}

// A source that fails stops the pipeline, and the other sources are stopped too.
func TestRunStopsWhenASourceFails(t *testing.T) {
	p := &Pipeline{Decider: fixedDecider{Verdict: verify.Deny}, Outbox: &fakeOutbox{o: &order{}}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background(), QRSource{qrscantest.New()}, failingSource{}) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "failing source") {
			t.Errorf("Run returned %v, want the failing source's error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s after a source failed")
	}
}
