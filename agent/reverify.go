package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// Tunables; tests shrink them.
var (
	// maxRechecks bounds the credentials waiting for a re-check.
	maxRechecks = 1000
)

type flagged struct {
	cred    verify.Credential
	kind    string // the passage record's credential (face when the face decided; the re-check uses cred)
	passage string
	at      time.Time
	subject verify.Identity
}

type rechecker struct {
	d       *Daemon
	mu      sync.Mutex
	pending []flagged
	// unsent are alerts waiting to be stored off the decision loop (an overflow of pending)
	// or again (the store failed); at most maxRechecks.
	unsent    []unsentAlert
	wake      chan struct{}
	alertWake chan struct{}
}

type unsentAlert struct {
	f    flagged
	kind string
	dec  verify.Decision
}

func newRechecker(d *Daemon) *rechecker {
	return &rechecker{d: d, wake: make(chan struct{}, 1), alertWake: make(chan struct{}, 1)}
}

// queueAlert keeps an alert for the run goroutine to store. Past maxRechecks waiting, the
// oldest is given up (logged): its flagged passage has no outcome in the outbox, so the next
// start alerts it (findUnsettled).
func (r *rechecker) queueAlert(u unsentAlert) {
	r.mu.Lock()
	var gaveUp *unsentAlert
	if len(r.unsent) >= maxRechecks {
		old := r.unsent[0]
		gaveUp = &old
		r.unsent = r.unsent[1:]
	}
	r.unsent = append(r.unsent, u)
	r.mu.Unlock()
	if gaveUp != nil {
		r.d.Log.Error("alert NOT stored: too many waiting; the next start raises it", "kind", gaveUp.kind, "passage", gaveUp.f.passage)
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
			if n := len(r.unsent) - maxRechecks; n > 0 {
				r.unsent = r.unsent[n:]
				r.d.Log.Error("alerts NOT stored: too many waiting; the next start raises them", "count", n)
			}
			r.mu.Unlock()
			return
		}
	}
}

func (r *rechecker) add(cred verify.Credential, passage string, dec verify.Decision) {
	f := flagged{cred: cred, kind: cred.Kind, passage: passage, at: time.Now(), subject: dec.Subject}
	if dec.Credential != "" {
		f.kind = dec.Credential
	}
	r.mu.Lock()
	var dropped *flagged
	if len(r.pending) >= maxRechecks {
		old := r.pending[0]
		dropped = &old
		r.pending = r.pending[1:]
	}
	r.pending = append(r.pending, f)
	r.mu.Unlock()
	if dropped != nil { // stored by the run goroutine: add never waits for the disk
		r.queueAlert(unsentAlert{*dropped, AlertRecheckAbandoned, verify.Decision{Reason: "recheck_queue_full"}})
	}
}

// Pending is how many flagged passages wait for their re-check.
func (r *rechecker) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// run re-checks what is pending each probe interval, until ctx ends; what is still pending
// then is published as abandoned.
func (r *rechecker) run(ctx context.Context) error {
	t := time.NewTicker(r.d.Cfg.Platform.ProbeInterval)
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
		dec := r.d.Verifier.Recheck(ctx, f.cred, f.passage)
		if dec.Mode == verify.ModeOffline {
			r.d.auditCalls(ctx, f.passage, PurposeRecheck, dec.Calls())
			return // still down; try at the next interval
		}
		r.mu.Lock()
		r.pending = r.pending[1:]
		r.mu.Unlock()
		// The re-check's audit row carries its verdict: a deny settles the passage for the
		// scan at the next start (findUnsettled) only together with its recheck_failed alert,
		// so an alert that could not be stored is tried again, and raised at the next start
		// if this run ends first.
		r.d.auditRecheck(ctx, f.passage, dec.Verdict, dec.Calls())
		if dec.Verdict == verify.Deny {
			if r.alert(ctx, f, AlertRecheckFailed, dec) != nil {
				r.queueAlert(unsentAlert{f, AlertRecheckFailed, dec})
			}
			continue
		}
		r.d.Log.Info("flagged passage re-verified", "passage", f.passage, "verdict", dec.Verdict, "reason", dec.Reason)
	}
}

func (r *rechecker) abandonAll() {
	r.flushAlerts(context.Background()) // once more; what fails is raised at the next start
	r.mu.Lock()
	left := r.pending
	r.pending = nil
	r.mu.Unlock()
	for _, f := range left {
		r.alert(context.Background(), f, AlertRecheckAbandoned, verify.Decision{Reason: "daemon_stopped"})
	}
}

func (r *rechecker) alert(ctx context.Context, f flagged, kind string, dec verify.Decision) error {
	d := r.d
	subj := f.subject
	if dec.Subject.IDNumber != "" {
		subj = dec.Subject
	}
	a := Alert{
		Kind: kind, Passage: f.passage, PassageTS: f.at.UTC().Format(tsLayout), Credential: f.kind,
		Subject: Subject{ID: privacy.MaskID(subj.IDNumber), Name: privacy.MaskName(subj.Name)},
		Verdict: dec.Verdict, Reason: dec.Reason, Policy: d.Verifier.PolicyHash(),
	}
	if dec.Call != nil {
		a.PlatformRequestID = dec.Call.RequestID
	}
	return d.storeAlert(ctx, a)
}

// storeAlert stamps a and commits it to the outbox on stream alert; a refusal is logged,
// never silent, and returned.
func (d *Daemon) storeAlert(ctx context.Context, a Alert) error {
	a.TS, a.Device, a.Venue = time.Now().UTC().Format(tsLayout), d.Cfg.Device.ID, d.Cfg.Device.Venue
	kind := a.Kind
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	_, err := d.Outbox.AppendID(actx, StreamAlert, Topic(d.Cfg, StreamAlert), "", func(seq int64, id string) ([]byte, error) {
		a.ID, a.Seq = id, seq
		return json.Marshal(a)
	})
	if err != nil {
		d.Log.Error("alert NOT stored", "kind", kind, "passage", a.Passage, "err", err)
		return err
	}
	d.Log.Warn("alert", "kind", kind, "passage", a.Passage, "reason", a.Reason)
	return nil
}

// unsettled is a flagged passage found in the outbox without a re-check outcome.
type unsettled struct {
	ID, TS, Credential, Policy string
	Subject                    Subject
	// Denied: a re-check got a deny answer, but its recheck_failed alert was never stored.
	Denied bool
}

// findUnsettled reads the outbox at path (read-only) for flagged passages that have no
// re-check outcome: no alert names them (recheck_failed or recheck_abandoned) and no
// re-check call got a passing answer from the platform (an audit row with purpose recheck,
// source live and a verdict other than deny; a deny settles the passage only with its
// alert, and such a passage is found Denied). Pending re-checks live in memory only, so these are the ones a previous run
// lost. Records the outbox purged are not seen. snapshot, when set, is closed once the read
// transaction has begun (or the scan ended): records committed after that are not seen.
func findUnsettled(ctx context.Context, path string, snapshot chan<- struct{}) ([]unsettled, error) {
	var once sync.Once
	began := func() {
		if snapshot != nil {
			once.Do(func() { close(snapshot) })
		}
	}
	defer began()
	rd, err := queue.OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var found []unsettled
	settled, denied := map[string]bool{}, map[string]bool{}
	err = rd.Entries(ctx, func(e queue.Entry) error {
		began()
		switch e.Stream {
		case StreamPassage:
			if !bytes.Contains(e.Payload, []byte(`"flagged":true`)) {
				return nil
			}
			var rec Record
			if json.Unmarshal(e.Payload, &rec) != nil || !rec.Flagged {
				return nil
			}
			found = append(found, unsettled{ID: rec.ID, TS: rec.TS, Credential: rec.Credential, Policy: rec.Policy,
				Subject: Subject{ID: rec.Subject.ID, Name: rec.Subject.Name}})
		case StreamAlert:
			var a Alert
			if json.Unmarshal(e.Payload, &a) == nil && a.Passage != "" {
				settled[a.Passage] = true
			}
		case StreamAudit:
			if !bytes.Contains(e.Payload, []byte(`"purpose":"recheck"`)) {
				return nil
			}
			var row AuditRow
			if json.Unmarshal(e.Payload, &row) == nil && row.Purpose == PurposeRecheck && row.Source == verify.SourceLive {
				if row.Verdict == verify.Deny {
					denied[row.Passage] = true
				} else {
					settled[row.Passage] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := found[:0]
	for _, u := range found {
		if !settled[u.ID] {
			u.Denied = denied[u.ID]
			out = append(out, u)
		}
	}
	return out, nil
}

// alertUnsettled starts the scan for flagged passages a previous run left without a re-check
// outcome, and raises a recheck_abandoned alert (reason daemon_restarted) for each. It
// returns once the scan's read snapshot is taken, before the first passage of this run, so
// nothing of this run is mistaken for a lost one; the scan itself (seconds on a full outbox
// on a small board) goes on in the background, and done is closed when it ended. A failure
// to read the outbox is logged and does not stop the unit; a scan cut short by shutdown is
// done again at the next start.
func alertUnsettled(ctx context.Context, d *Daemon) (done <-chan struct{}) {
	fin := make(chan struct{})
	if d.Outbox == nil || d.Cfg.Queue.Path == "" {
		close(fin)
		return fin
	}
	snapshot := make(chan struct{})
	go func() {
		defer close(fin)
		scanUnsettled(ctx, d, snapshot)
	}()
	select {
	case <-snapshot:
	case <-fin:
	}
	return fin
}

func scanUnsettled(ctx context.Context, d *Daemon, snapshot chan<- struct{}) {
	us, err := findUnsettled(ctx, d.Cfg.Queue.Path, snapshot)
	if ctx.Err() != nil {
		return // shutting down: the next start scans again
	}
	if err != nil {
		d.Log.Error("could not look for flagged passages left without a re-check; none are alerted", "queue", d.Cfg.Queue.Path, "err", err)
		return
	}
	for _, u := range us {
		a := Alert{
			Kind: AlertRecheckAbandoned, Passage: u.ID, PassageTS: u.TS, Credential: u.Credential,
			Subject: u.Subject, Reason: ReasonDaemonRestarted, Policy: u.Policy,
		}
		if u.Denied { // re-checked and denied; the alert was not stored before the run ended
			a.Kind, a.Verdict = AlertRecheckFailed, verify.Deny
		}
		_ = d.storeAlert(ctx, a) // logged; a failure is found again at the next start
	}
	if len(us) > 0 {
		d.Log.Warn("flagged passages left without a re-check by the previous run: alerted as abandoned", "count", len(us))
	}
}
