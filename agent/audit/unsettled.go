package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// unsettled is a flagged passage found in the outbox without a re-check outcome.
type unsettled struct {
	ID, TS, Credential, Policy string
	Subject                    record.Subject
	// Denied: a re-check got a deny answer, but its recheck_failed alert was never stored.
	Denied bool
}

// findUnsettled reads the outbox (scan) for flagged passages that have no re-check outcome:
// no alert names them and no re-check call got a passing answer from the platform (an audit
// row with purpose recheck, source live and a verdict other than deny; a deny settles the
// passage only with its alert, and such a passage is found Denied). Pending re-checks live in
// memory only, so these are the ones a previous run lost. Records the outbox purged are not
// seen, nor damaged rows (counted in the result). began, when set, is called once the read
// snapshot is taken: records committed after that are not seen.
func findUnsettled(ctx context.Context, scan scanFunc, began func()) ([]unsettled, queue.ScanResult, error) {
	var found []unsettled
	settled, denied := map[string]bool{}, map[string]bool{}
	res, err := scan(ctx, queue.ScanOptions{Snapshot: began}, func(e queue.Entry) error {
		switch e.Stream {
		case record.StreamPassage:
			if u, ok := flaggedPassage(e.Payload); ok {
				found = append(found, u)
			}
		case record.StreamAlert:
			var a record.Alert
			if json.Unmarshal(e.Payload, &a) == nil && a.Passage != "" {
				settled[a.Passage] = true
			}
		case record.StreamAudit:
			if passage, verdict, ok := recheckAnswer(e.Payload); ok {
				if verdict == verify.Deny {
					denied[passage] = true
				} else {
					settled[passage] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, res, err
	}
	out := found[:0]
	for _, u := range found {
		if !settled[u.ID] {
			u.Denied = denied[u.ID]
			out = append(out, u)
		}
	}
	return out, res, nil
}

// scanFunc reads the outbox's records in one snapshot (Options.Scan).
type scanFunc = func(ctx context.Context, opts queue.ScanOptions, f func(queue.Entry) error) (queue.ScanResult, error)

// flaggedPassage decodes a passage record that allow_and_flag admitted.
func flaggedPassage(payload []byte) (unsettled, bool) {
	if !bytes.Contains(payload, []byte(`"flagged":true`)) {
		return unsettled{}, false
	}
	var rec record.Passage
	if json.Unmarshal(payload, &rec) != nil || !rec.Flagged {
		return unsettled{}, false
	}
	return unsettled{ID: rec.ID, TS: rec.TS, Credential: rec.Credential, Policy: rec.Policy,
		Subject: record.Subject{ID: rec.Subject.ID, Name: rec.Subject.Name}}, true
}

// recheckAnswer decodes an audit row of a re-check the platform answered.
func recheckAnswer(payload []byte) (passage, verdict string, ok bool) {
	if !bytes.Contains(payload, []byte(`"purpose":"recheck"`)) {
		return "", "", false
	}
	var row record.AuditRow
	if json.Unmarshal(payload, &row) != nil || row.Purpose != record.PurposeRecheck || row.Source != verify.SourceLive {
		return "", "", false
	}
	return row.Passage, row.Verdict, true
}

// scanUnsettled raises a recheck_abandoned alert (reason daemon_restarted) for each flagged
// passage a previous run left without a re-check outcome (recheck_failed for one whose deny
// was never alerted). Started is closed once the scan's read snapshot is taken, before the
// first passage of this run, so that nothing of this run is mistaken for a lost one. A
// failure to read the outbox is logged and does not stop the unit; a scan cut short by
// shutdown is done again at the next start.
func (a *Auditor) scanUnsettled(ctx context.Context) {
	defer close(a.scanned)
	var once sync.Once
	began := func() { once.Do(func() { close(a.began) }) }
	defer began()
	if a.opt.Scan == nil {
		return
	}
	us, res, err := findUnsettled(ctx, a.opt.Scan, began)
	if ctx.Err() != nil {
		return // shutting down: the next start scans again
	}
	if err != nil {
		a.opt.Log.Error("could not look for flagged passages left without a re-check; none are alerted", "err", err)
		return
	}
	if res.Damaged > 0 {
		a.opt.Log.Error("damaged outbox rows skipped while looking for flagged passages left without a re-check; the rest are alerted",
			"damaged", res.Damaged, "first", res.FirstDamage)
	}
	for _, u := range us {
		al := record.Alert{
			Kind: record.AlertRecheckAbandoned, Passage: u.ID, PassageTS: u.TS, Credential: u.Credential,
			Subject: u.Subject, Reason: record.ReasonDaemonRestarted, Policy: u.Policy,
		}
		if u.Denied { // re-checked and denied; the alert was not stored before the run ended
			al.Kind, al.Verdict = record.AlertRecheckFailed, verify.Deny
		}
		_ = a.Alert(ctx, al) // logged; a failure is found again at the next start
	}
	if len(us) > 0 {
		a.opt.Log.Warn("flagged passages left without a re-check by the previous run: alerted", "count", len(us))
	}
}
