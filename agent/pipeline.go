package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// Decider decides a passage; verify.Verifier is one.
type Decider interface {
	Decide(ctx context.Context, cred verify.Credential, passageID string) verify.Decision
}

// Outbox stores records durably; queue.Outbox is one.
type Outbox interface {
	AppendID(ctx context.Context, stream, topic, id string, build func(seq int64, id string) ([]byte, error)) (queue.Entry, error)
}

// Relay opens the barrier; relay.GPIO is one.
type Relay interface {
	Pulse(ctx context.Context, d time.Duration) error
	Halt() error
	String() string
}

// Passage is a decided and recorded passage, handed to observers (the console, the verdict
// screen later).
type Passage struct {
	Record    Record
	Committed bool // false when the outbox refused it: the record is lost and counted
}

// Pipeline turns credentials into decisions, records and barrier movements, one at a time.
type Pipeline struct {
	Device, Venue string
	Topic         string // where passage records are published
	Decider       Decider
	Outbox        Outbox
	Relay         Relay // nil for a unit without a barrier
	Pulse         time.Duration
	Log           *slog.Logger
	// Observe, when set, is told about every passage after the barrier moved.
	Observe func(Passage)
	// Now is the wall clock; nil means time.Now.
	Now func() time.Time
	// Gate, when set, is the remote mode switch (normal, always_open, locked); it decides
	// what the barrier does (ops_mode.go).
	Gate *GateMode
	// Clock says whether the wall clock is trusted; nil means clock.State.
	Clock func() string
	// Seal, when set, adds the sealed identity and its look-up hash to a record's subject
	// before it is stored (queue_part.go).
	Seal func(s *Subject, who verify.Identity)
	// Decided, when set, is told about every decision after the barrier moved, with the
	// credential (for a re-check; it must not keep it longer than needed) and the platform
	// calls the decision made (audit.go audits them).
	Decided func(ctx context.Context, cred verify.Credential, passageID string, d verify.Decision)

	passages, lost, relayFaults atomic.Int64
	lastActive                  atomic.Int64 // unix ns of the last loop turn, for liveness
}

// Handle decides one credential read at scannedAt (monotonic reading included) and acts on
// it: the record is committed before the barrier moves. It returns the passage; an error only
// when the record could not be stored (the gate still acts on the decision, and the loss is
// counted).
func (p *Pipeline) Handle(ctx context.Context, cred verify.Credential, scannedAt time.Time) (Passage, error) {
	at := scannedAt
	if p.Now != nil {
		at = p.Now()
	}
	id := uuid.NewString()
	d := p.Decider.Decide(ctx, cred, id)
	gate := GateNoBarrier
	if p.Relay != nil {
		gate = GateNotOpened
		if d.Verdict == verify.Pass {
			gate = GateOpened
		}
	}
	gate, gateMode := p.Gate.apply(gate)
	rec := newRecord(id, at, p.Device, p.Venue, cred.Kind, d, gate)
	rec.Clock, rec.GateMode = p.clock(), gateMode
	if p.Seal != nil {
		p.Seal(&rec.Subject, d.Subject)
	}
	_, err := p.Outbox.AppendID(ctx, StreamPassage, p.Topic, id, func(seq int64, _ string) ([]byte, error) {
		rec.Seq = seq
		return json.Marshal(rec)
	})
	pass := Passage{Record: rec, Committed: err == nil}
	if err != nil {
		p.lost.Add(1)
		p.Log.Error("passage record NOT stored; the gate still follows the decision", "passage", id, "verdict", d.Verdict, "lost_total", p.lost.Load(), "err", err)
		err = fmt.Errorf("agent: store passage %s: %w", id, err)
	}
	if gate == GateOpened {
		if perr := p.Relay.Pulse(ctx, p.Pulse); perr != nil {
			p.relayFaults.Add(1)
			p.Log.Error("barrier did not open", "relay", p.Relay.String(), "passage", id, "err", perr)
		}
	}
	p.passages.Add(1)
	attrs := []any{"passage", id, "seq", rec.Seq, "credential", rec.Credential, "subject", rec.Subject.ID, "verdict", d.Verdict, "reason", d.Reason, "mode", d.Mode, "gate", gate,
		"decision_ms", rec.DecisionMS, "scan_to_gate_ms", float64(time.Since(scannedAt).Microseconds()) / 1000}
	if d.Err != nil {
		attrs = append(attrs, "platform_err", d.Err.Error())
	}
	p.Log.Info("passage", attrs...)
	if p.Decided != nil {
		p.Decided(ctx, cred, id, d)
	}
	if p.Observe != nil {
		p.Observe(pass)
	}
	return pass, err
}

// read is one credential waiting for a decision.
type read struct {
	cred verify.Credential
	at   time.Time
}

// Run reads credentials from every source and handles them one at a time, in the order read,
// until ctx ends. A source that stops with an error stops the pipeline.
func (p *Pipeline) Run(ctx context.Context, sources ...Source) error {
	reads := make(chan read, 16)
	errs := make(chan error, len(sources))
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // stop every source, then wait for them
	for _, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Run(sctx, func(c verify.Credential, at time.Time) {
				select {
				case reads <- read{c, at}:
				case <-sctx.Done():
				}
			})
			if err != nil && sctx.Err() == nil {
				errs <- fmt.Errorf("agent: %s stopped: %w", s, err)
			}
		}()
	}
	p.touch()
	tick := time.NewTicker(livenessTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			return err
		case r := <-reads:
			p.touch()
			// A decision in flight finishes even when shutdown begins: its record is stored.
			_, _ = p.Handle(context.WithoutCancel(ctx), r.cred, r.at)
			p.touch()
		case <-tick.C:
			p.touch()
		}
	}
}

// livenessTick is how often an idle pipeline loop turns (and advances LastActive); tests
// shrink it.
var livenessTick = time.Second

// LastActive is when the pipeline loop last turned; a stuck loop stops advancing it.
func (p *Pipeline) LastActive() time.Time { return time.Unix(0, p.lastActive.Load()) }

func (p *Pipeline) touch() { p.lastActive.Store(time.Now().UnixNano()) }

// Counters of the pipeline.
type Counters struct {
	Passages, Lost, RelayFaults int64
}

// Counters returns the pipeline's counters.
func (p *Pipeline) Counters() Counters {
	return Counters{p.passages.Load(), p.lost.Load(), p.relayFaults.Load()}
}

func (p *Pipeline) clock() string {
	if p.Clock != nil {
		return p.Clock()
	}
	return clockState()
}
