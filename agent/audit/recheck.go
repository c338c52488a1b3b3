package audit

import (
	"context"
	"sync"
	"time"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/verify"
)

// flagged is a passage allow_and_flag admitted, waiting for its re-check.
type flagged struct {
	cred    verify.Credential
	kind    string // the passage record's credential (face when the face decided; the re-check uses cred)
	passage string
	at      time.Time
	subject verify.Identity
}

// unsentAlert is an alert waiting to be stored off the decision loop, or again.
type unsentAlert struct {
	f    flagged
	kind string
	dec  verify.Decision
}

// rechecker re-verifies flagged passages when the platform answers again; a failing
// re-check, or one that can never happen (its queue overflowed, or the daemon stopped first),
// is an alert.
type rechecker struct {
	a       *Auditor
	mu      sync.Mutex
	pending []flagged
	// unsent are alerts waiting to be stored off the decision loop (an overflow of pending)
	// or again (the store failed); at most MaxRechecks.
	unsent    []unsentAlert
	wake      chan struct{}
	alertWake chan struct{}
}

func newRechecker(a *Auditor) *rechecker {
	return &rechecker{a: a, wake: make(chan struct{}, 1), alertWake: make(chan struct{}, 1)}
}

func (r *rechecker) pendingCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// add keeps a flagged passage's credential for its re-check; past MaxRechecks the oldest is
// given up (an alert, stored by run: add never waits for the disk).
func (r *rechecker) add(cred verify.Credential, passage string, dec verify.Decision) {
	f := flagged{cred: cred, kind: cred.Kind, passage: passage, at: time.Now(), subject: dec.Subject}
	if dec.Credential != "" {
		f.kind = dec.Credential
	}
	r.mu.Lock()
	var dropped *flagged
	if len(r.pending) >= r.a.opt.MaxRechecks {
		old := r.pending[0]
		dropped = &old
		r.pending = r.pending[1:]
	}
	r.pending = append(r.pending, f)
	r.mu.Unlock()
	if dropped != nil {
		r.queueAlert(unsentAlert{*dropped, record.AlertRecheckAbandoned, verify.Decision{Reason: "recheck_queue_full"}})
	}
}

// queueAlert keeps an alert for run to store. Past MaxRechecks waiting, the oldest is given
// up (logged): its flagged passage has no outcome in the outbox, so the next start alerts it.
func (r *rechecker) queueAlert(u unsentAlert) {
	r.mu.Lock()
	var gaveUp *unsentAlert
	if len(r.unsent) >= r.a.opt.MaxRechecks {
		old := r.unsent[0]
		gaveUp = &old
		r.unsent = r.unsent[1:]
	}
	r.unsent = append(r.unsent, u)
	r.mu.Unlock()
	if gaveUp != nil {
		r.a.opt.Log.Error("alert NOT stored: too many waiting; the next start raises it", "kind", gaveUp.kind, "passage", gaveUp.f.passage)
	}
	select {
	case r.alertWake <- struct{}{}:
	default:
	}
}

// flushAlerts stores the waiting alerts in order; at the first that fails (a slow or full
// disk) it stops, and the rest wait for the next try.
func (r *rechecker) flushAlerts(ctx context.Context) {
	r.mu.Lock()
	us := r.unsent
	r.unsent = nil
	r.mu.Unlock()
	for i, u := range us {
		if r.alert(ctx, u.f, u.kind, u.dec) != nil {
			r.mu.Lock()
			r.unsent = append(append([]unsentAlert(nil), us[i:]...), r.unsent...)
			if n := len(r.unsent) - r.a.opt.MaxRechecks; n > 0 {
				r.unsent = r.unsent[n:]
				r.a.opt.Log.Error("alerts NOT stored: too many waiting; the next start raises them", "count", n)
			}
			r.mu.Unlock()
			return
		}
	}
}

// run re-checks what is pending each probe interval, until ctx ends; what is still pending
// then is alerted as abandoned.
func (r *rechecker) run(ctx context.Context) error {
	t := time.NewTicker(r.a.opt.ProbeInterval)
	defer t.Stop()
	defer r.abandonAll()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.alertWake:
			r.flushAlerts(ctx)
			continue
		case <-t.C:
		case <-r.wake:
		}
		r.flushAlerts(ctx)
		r.drain(ctx)
	}
}

// drain re-checks pending passages in order while the platform answers.
func (r *rechecker) drain(ctx context.Context) {
	for ctx.Err() == nil {
		r.mu.Lock()
		if len(r.pending) == 0 {
			r.mu.Unlock()
			return
		}
		f := r.pending[0]
		r.mu.Unlock()
		dec := r.a.opt.Recheck.Recheck(ctx, f.cred, f.passage)
		if dec.Mode == verify.ModeOffline {
			r.a.enqueue(job{passage: f.passage, purpose: record.PurposeRecheck, calls: dec.Calls()})
			return // still down; try at the next interval
		}
		r.mu.Lock()
		r.pending = r.pending[1:]
		r.mu.Unlock()
		// The re-check's audit row carries its verdict: a deny settles the passage for the
		// scan at the next start only together with its recheck_failed alert, so an alert that
		// could not be stored is tried again, and raised at the next start if this run ends
		// first.
		r.a.enqueue(job{passage: f.passage, purpose: record.PurposeRecheck, verdict: dec.Verdict, calls: dec.Calls()})
		if dec.Verdict == verify.Deny {
			if r.alert(ctx, f, record.AlertRecheckFailed, dec) != nil {
				r.queueAlert(unsentAlert{f, record.AlertRecheckFailed, dec})
			}
			continue
		}
		r.a.opt.Log.Info("flagged passage re-verified", "passage", f.passage, "verdict", dec.Verdict, "reason", dec.Reason)
	}
}

func (r *rechecker) abandonAll() {
	r.flushAlerts(context.Background()) // once more; what fails is raised at the next start
	r.mu.Lock()
	left := r.pending
	r.pending = nil
	r.mu.Unlock()
	for _, f := range left {
		_ = r.alert(context.Background(), f, record.AlertRecheckAbandoned, verify.Decision{Reason: "daemon_stopped"})
	}
}

func (r *rechecker) alert(ctx context.Context, f flagged, kind string, dec verify.Decision) error {
	subj := f.subject
	if dec.Subject.IDNumber != "" {
		subj = dec.Subject
	}
	al := record.Alert{
		Kind: kind, Passage: f.passage, PassageTS: record.TS(f.at), Credential: f.kind,
		Subject: record.Subject{ID: privacy.MaskID(subj.IDNumber), Name: privacy.MaskName(subj.Name)},
		Verdict: dec.Verdict, Reason: dec.Reason, Policy: r.a.opt.Recheck.PolicyHash(),
	}
	if dec.Call != nil {
		al.PlatformRequestID = dec.Call.RequestID
	}
	return r.a.Alert(ctx, al)
}
