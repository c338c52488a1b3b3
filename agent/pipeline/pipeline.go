package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sentinel-edge/sentinel/agent/clock"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// Source yields credentials until its context ends: a QR scanner, an ID-card reader, a face
// camera. emit gets the credential and when it was read.
type Source interface {
	Run(ctx context.Context, emit func(verify.Credential, time.Time)) error
	String() string
}

// Step looks at a credential before the platform is asked. It returns the credential to
// decide (completed, e.g. with the face snapshot a card read needs), or a decision made
// without the platform (e.g. no snapshot where one is required).
type Step interface {
	Prepare(ctx context.Context, cred verify.Credential) (verify.Credential, *verify.Decision)
}

// Decider decides a passage; verify.Verifier is one.
type Decider interface {
	Decide(ctx context.Context, cred verify.Credential, passageID string) verify.Decision
}

// Store keeps records durably; queue.Outbox is one.
type Store interface {
	AppendID(ctx context.Context, stream, topic, id string, build func(seq int64, id string) ([]byte, error)) (queue.Entry, error)
}

// Barrier is the lane's barrier; lane.Lane is one. Plan says what it does for a verdict in
// the gate mode in force (the record's gate and gate_mode); Open opens it for a pass.
type Barrier interface {
	Plan(pass bool) (gate, gateMode string)
	Open(ctx context.Context) (time.Duration, error)
}

// Sealer adds the sealed identity (and, when kept, the face) to a record's subject before
// it is stored; seal.Sealer is one.
type Sealer interface {
	Seal(s *record.Subject, who verify.Identity, face []byte)
}

// Auditor is told about every decision after the barrier moved, with the credential (for a
// re-check of a flagged passage; it must not keep it longer than needed). It must not block.
type Auditor interface {
	Decided(ctx context.Context, cred verify.Credential, passageID string, d verify.Decision)
}

// Outcome is a decided and recorded passage, as observers see it: no raw personal data.
type Outcome struct {
	Record    record.Passage
	Committed bool          // false when the outbox refused the record: it is lost and counted
	Calls     []verify.Call // the platform calls the decision made, in order
}

// Observer is told about every passage after the barrier moved. It must not block.
type Observer interface{ Passage(Outcome) }

// ObserverFunc makes a function an Observer.
type ObserverFunc func(Outcome)

// Passage calls f.
func (f ObserverFunc) Passage(o Outcome) { f(o) }

// Options configure a Pipeline.
type Options struct {
	Unit      record.Unit // whose passages: device, venue and topic
	Steps     []Step      // run in order before the Decider
	Decider   Decider
	Store     Store
	Barrier   Barrier
	Sealer    Sealer // nil: records carry masked fields only
	Auditor   Auditor
	Observers []Observer
	// Now is the wall clock that stamps records; nil means the time the credential was read.
	Now func() time.Time
	// Clock says whether the wall clock is trusted; nil means clock.State.
	Clock func() string
	Log   *slog.Logger
	// LivenessTick is how often an idle loop turns (and advances LastActive); 0 means 1s.
	LivenessTick time.Duration
}

// Pipeline decides, records and acts on credentials one at a time.
type Pipeline struct {
	opt   Options
	topic string

	passages, lost, relayFaults atomic.Int64
	lastActive                  atomic.Int64 // unix ns of the last loop turn, for liveness
}

// New returns a pipeline; Decider, Store and Barrier are required.
func New(opt Options) *Pipeline {
	if opt.Clock == nil {
		opt.Clock = clock.State
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.LivenessTick <= 0 {
		opt.LivenessTick = time.Second
	}
	return &Pipeline{opt: opt, topic: opt.Unit.Topic(record.StreamPassage)}
}

// Handle decides one credential read at readAt (monotonic reading included) and acts on it:
// the record is committed before the barrier moves. It returns the passage; an error only
// when the record could not be stored (the gate still acts on the decision, and the loss is
// counted).
func (p *Pipeline) Handle(ctx context.Context, cred verify.Credential, readAt time.Time) (Outcome, error) {
	at := readAt
	if p.opt.Now != nil {
		at = p.opt.Now()
	}
	id := uuid.NewString()
	asRead := cred
	asRead.FaceJPEG = nil                   // the auditor keeps no face
	defer func() { clear(cred.FaceJPEG) }() // a face lives for its passage only (sealed first when kept)

	cred, d := p.decide(ctx, cred, id)                             // 1, 2
	gate, gateMode := p.opt.Barrier.Plan(d.Verdict == verify.Pass) // 3
	rec := p.record(id, at, cred, d, gate, gateMode)               // 4
	err := p.store(ctx, &rec)                                      // 5
	if gate == record.GateOpened {                                 // 6
		if _, oerr := p.opt.Barrier.Open(ctx); oerr != nil {
			p.relayFaults.Add(1)
			p.opt.Log.Error("barrier did not open", "passage", id, "err", oerr)
		}
	}
	p.passages.Add(1)
	p.log(rec, d, readAt)
	if p.opt.Auditor != nil { // 7
		p.opt.Auditor.Decided(ctx, asRead, id, d)
	}
	out := Outcome{Record: rec, Committed: err == nil, Calls: d.Calls()}
	for _, o := range p.opt.Observers { // 8
		o.Passage(out)
	}
	return out, err
}

// decide runs the steps, then the decider unless a step decided; the decision's time covers
// both (a snapshot is part of the decision).
func (p *Pipeline) decide(ctx context.Context, cred verify.Credential, id string) (verify.Credential, verify.Decision) {
	start := time.Now()
	for _, s := range p.opt.Steps {
		var early *verify.Decision
		if cred, early = s.Prepare(ctx, cred); early != nil {
			d := *early
			d.Took = time.Since(start)
			return cred, d
		}
	}
	d := p.opt.Decider.Decide(ctx, cred, id)
	d.Took = time.Since(start)
	return cred, d
}

// record builds the passage record: masked subject, sealed when a sealer is set.
func (p *Pipeline) record(id string, at time.Time, cred verify.Credential, d verify.Decision, gate, gateMode string) record.Passage {
	rec := newRecord(id, at, p.opt.Unit, cred.Kind, d, gate)
	if rec.Credential == verify.KindFace {
		rec.Face = &record.FaceCheck{Check: record.FaceCheckCard, Score: d.FaceScore, Liveness: record.LivenessNone}
		if cred.Kind == verify.KindFace && cred.IDNumber == "" {
			rec.Face.Check = record.FaceCheckSearch
		}
	}
	rec.Clock, rec.GateMode = p.opt.Clock(), gateMode
	if p.opt.Sealer != nil {
		var face []byte
		if d.Credential == verify.KindFace {
			face = cred.FaceJPEG
		}
		p.opt.Sealer.Seal(&rec.Subject, d.Subject, face)
	}
	return rec
}

// store commits the record and stamps its seq; a refusal is counted and logged.
func (p *Pipeline) store(ctx context.Context, rec *record.Passage) error {
	_, err := p.opt.Store.AppendID(ctx, record.StreamPassage, p.topic, rec.ID, func(seq int64, _ string) ([]byte, error) {
		rec.Seq = seq
		return json.Marshal(rec)
	})
	if err != nil {
		rec.Seq = 0 // the transaction that numbered it rolled back: that seq goes to the next one
		p.lost.Add(1)
		p.opt.Log.Error("passage record NOT stored; the gate still follows the decision", "passage", rec.ID, "verdict", rec.Verdict,
			"lost_total", p.lost.Load(), "err", err)
		return fmt.Errorf("pipeline: store passage %s: %w", rec.ID, err)
	}
	return nil
}

func (p *Pipeline) log(rec record.Passage, d verify.Decision, readAt time.Time) {
	stored := []any{"seq", rec.Seq}
	if rec.Seq == 0 {
		stored = []any{"stored", false} // logged NOT stored just before, with the error
	}
	attrs := append([]any{"passage", rec.ID}, stored...)
	attrs = append(attrs, "credential", rec.Credential, "subject", rec.Subject.ID, "verdict", rec.Verdict,
		"reason", rec.Reason, "mode", rec.Mode, "gate", rec.Gate, "decision_ms", rec.DecisionMS,
		"scan_to_gate_ms", float64(time.Since(readAt).Microseconds())/1000)
	if d.Err != nil {
		attrs = append(attrs, "platform_err", d.Err.Error())
	}
	p.opt.Log.Info("passage", attrs...)
}

// newRecord is the passage record of decision d: masked identity only.
func newRecord(id string, at time.Time, u record.Unit, kind string, d verify.Decision, gate string) record.Passage {
	if d.Credential != "" {
		kind = d.Credential // the credential verified: face when the face decided
	}
	r := record.Passage{
		ID: id, TS: record.TS(at), Device: u.Device, Venue: u.Venue, Credential: kind,
		Subject: record.Subject{ID: privacy.MaskID(d.Subject.IDNumber), Name: privacy.MaskName(d.Subject.Name)},
		Verdict: d.Verdict, Reason: d.Reason, Mode: d.Mode, Gate: gate, Policy: d.PolicyHash,
		HealthCode: d.HealthCode, DecisionMS: d.Took.Milliseconds(), Fallback: d.Fallback, Flagged: d.Flagged,
	}
	if !d.NATSampledAt.IsZero() {
		r.NATSampledAt = d.NATSampledAt.UTC().Format(time.RFC3339)
	}
	if d.Call != nil {
		r.PlatformRequestID = d.Call.RequestID
	}
	if d.TimeSource == verify.TimePlatform && !d.PlatformTime.IsZero() {
		r.TimeSource, r.PlatformTime = d.TimeSource, d.PlatformTime.UTC().Format(time.RFC3339)
	}
	return r
}

// read is one credential waiting for a decision.
type read struct {
	cred verify.Credential
	at   time.Time
}

// Run reads credentials from every source and handles them one at a time, in the order read,
// until ctx ends. A source that stops with an error stops the pipeline. A decision in flight
// when ctx ends still finishes: its record is stored.
func (p *Pipeline) Run(ctx context.Context, sources ...Source) error {
	reads := make(chan read, 16)
	errs := make(chan error, len(sources))
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // stop every source, then wait for them
	for _, s := range sources {
		wg.Go(func() {
			err := s.Run(sctx, func(c verify.Credential, at time.Time) {
				select {
				case reads <- read{c, at}:
				case <-sctx.Done():
				}
			})
			if err != nil && sctx.Err() == nil {
				errs <- fmt.Errorf("pipeline: %s stopped: %w", s, err)
			}
		})
	}
	p.touch()
	tick := time.NewTicker(p.opt.LivenessTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			return err
		case r := <-reads:
			p.touch()
			_, _ = p.Handle(context.WithoutCancel(ctx), r.cred, r.at)
			p.touch()
		case <-tick.C:
			p.touch()
		}
	}
}

// LastActive is when the loop last turned; a stuck loop stops advancing it (the watchdog).
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
