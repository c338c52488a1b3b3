package agent

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/verify"
)

// Re-verification of flagged passages (platform.offline_policy: allow_and_flag). A passage
// admitted offline is flagged; its credential waits here, in memory only (never on disk), and
// is verified again once the platform answers. A failing re-check, or one that can never
// happen (the queue of re-checks overflowed, or the daemon stopped first), is published as an
// alert on <prefix>/<venue>/<device>/alert (stream "alert").
const StreamAlert = "alert"

// Alert kinds of the re-check.
const (
	AlertRecheckFailed    = "recheck_failed"    // the platform's answer would have denied the passage
	AlertRecheckAbandoned = "recheck_abandoned" // the passage could not be re-verified
)

// Alert is a record on the alert stream. Its fields are a contract (docs/docking-spec.md).
type Alert struct {
	ID                string  `json:"id"`
	Seq               int64   `json:"seq"`
	TS                string  `json:"ts"`
	Device            string  `json:"device"`
	Venue             string  `json:"venue"`
	Kind              string  `json:"kind"`    // recheck_failed, recheck_abandoned
	Passage           string  `json:"passage"` // the flagged passage
	PassageTS         string  `json:"passage_ts"`
	Credential        string  `json:"credential"`
	Subject           Subject `json:"subject"`
	Verdict           string  `json:"verdict,omitempty"` // the re-check's verdict
	Reason            string  `json:"reason"`            // the re-check's reason, or why it was abandoned
	Policy            string  `json:"policy"`
	PlatformRequestID string  `json:"platform_request_id,omitempty"`
}

// Tunables; tests shrink them.
var (
	// maxRechecks bounds the credentials waiting for a re-check.
	maxRechecks = 1000
)

type flagged struct {
	cred    verify.Credential
	passage string
	at      time.Time
	subject verify.Identity
}

type rechecker struct {
	d       *Daemon
	mu      sync.Mutex
	pending []flagged
	wake    chan struct{}
}

func newRechecker(d *Daemon) *rechecker {
	return &rechecker{d: d, wake: make(chan struct{}, 1)}
}

func (r *rechecker) add(cred verify.Credential, passage string, dec verify.Decision) {
	f := flagged{cred: cred, passage: passage, at: time.Now(), subject: dec.Subject}
	r.mu.Lock()
	var dropped *flagged
	if len(r.pending) >= maxRechecks {
		old := r.pending[0]
		dropped = &old
		r.pending = r.pending[1:]
	}
	r.pending = append(r.pending, f)
	r.mu.Unlock()
	if dropped != nil {
		r.alert(context.Background(), *dropped, AlertRecheckAbandoned, verify.Decision{Reason: "recheck_queue_full"})
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
		case <-t.C:
		case <-r.wake:
		}
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
		r.d.auditCalls(ctx, f.passage, PurposeRecheck, dec.Calls())
		if dec.Mode == verify.ModeOffline {
			return // still down; try at the next interval
		}
		r.mu.Lock()
		r.pending = r.pending[1:]
		r.mu.Unlock()
		if dec.Verdict == verify.Deny {
			r.alert(ctx, f, AlertRecheckFailed, dec)
			continue
		}
		r.d.Log.Info("flagged passage re-verified", "passage", f.passage, "verdict", dec.Verdict, "reason", dec.Reason)
	}
}

func (r *rechecker) abandonAll() {
	r.mu.Lock()
	left := r.pending
	r.pending = nil
	r.mu.Unlock()
	for _, f := range left {
		r.alert(context.Background(), f, AlertRecheckAbandoned, verify.Decision{Reason: "daemon_stopped"})
	}
}

func (r *rechecker) alert(ctx context.Context, f flagged, kind string, dec verify.Decision) {
	d := r.d
	subj := f.subject
	if dec.Subject.IDNumber != "" {
		subj = dec.Subject
	}
	a := Alert{
		TS: time.Now().UTC().Format(tsLayout), Device: d.Cfg.Device.ID, Venue: d.Cfg.Device.Venue,
		Kind: kind, Passage: f.passage, PassageTS: f.at.UTC().Format(tsLayout), Credential: f.cred.Kind,
		Subject: Subject{ID: privacy.MaskID(subj.IDNumber), Name: privacy.MaskName(subj.Name)},
		Verdict: dec.Verdict, Reason: dec.Reason, Policy: d.Verifier.PolicyHash(),
	}
	if dec.Call != nil {
		a.PlatformRequestID = dec.Call.RequestID
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	_, err := d.Outbox.AppendID(actx, StreamAlert, Topic(d.Cfg, StreamAlert), "", func(seq int64, id string) ([]byte, error) {
		a.ID, a.Seq = id, seq
		return json.Marshal(a)
	})
	if err != nil {
		d.Log.Error("alert NOT stored", "kind", kind, "passage", f.passage, "err", err)
		return
	}
	d.Log.Warn("alert", "kind", kind, "passage", f.passage, "reason", dec.Reason)
}
