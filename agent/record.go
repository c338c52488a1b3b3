package agent

import (
	"time"

	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/verify"
)

func newRecord(id string, at time.Time, dev, venue, kind string, d verify.Decision, gate string) Record {
	if d.Credential != "" {
		kind = d.Credential // the credential verified: face when the face decided
	}
	r := Record{
		ID:         id,
		TS:         at.UTC().Format(tsLayout),
		Device:     dev,
		Venue:      venue,
		Credential: kind,
		Subject:    Subject{ID: privacy.MaskID(d.Subject.IDNumber), Name: privacy.MaskName(d.Subject.Name)},
		Verdict:    d.Verdict,
		Reason:     d.Reason,
		Mode:       d.Mode,
		Gate:       gate,
		Policy:     d.PolicyHash,
		HealthCode: d.HealthCode,
		DecisionMS: d.Took.Milliseconds(),
		Fallback:   d.Fallback,
		Flagged:    d.Flagged,
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
