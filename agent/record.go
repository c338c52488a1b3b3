package agent

import (
	"time"

	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/verify"
)

// Gate outcomes of a passage.
const (
	GateOpened    = "opened"     // the barrier was told to open
	GateNotOpened = "not_opened" // denied, or the barrier could not be driven
	GateNoBarrier = "no_barrier" // a unit without a barrier (reduced gate, handheld)
)

// Stream and topic suffix of passage records.
const StreamPassage = "passage"

// Subject is the masked identity carried by a record. It never holds the full ID number or
// name.
type Subject struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Record is a passage as it is stored and published on <prefix>/<venue>/<device>/passage.
// Its fields are a contract (README, "Record format"): add fields, never rename them.
type Record struct {
	ID                string  `json:"id"`
	Seq               int64   `json:"seq"`
	TS                string  `json:"ts"`
	Device            string  `json:"device"`
	Venue             string  `json:"venue"`
	Credential        string  `json:"credential"`
	Subject           Subject `json:"subject"`
	Verdict           string  `json:"verdict"`
	Reason            string  `json:"reason"`
	Mode              string  `json:"mode"`
	Gate              string  `json:"gate"`
	Policy            string  `json:"policy"`
	HealthCode        string  `json:"health_code,omitempty"`
	NATSampledAt      string  `json:"nat_sampled_at,omitempty"`
	PlatformRequestID string  `json:"platform_request_id,omitempty"`
	DecisionMS        int64   `json:"decision_ms"`
}

func newRecord(id string, at time.Time, dev, venue, kind string, d verify.Decision, gate string) Record {
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
	}
	if !d.NATSampledAt.IsZero() {
		r.NATSampledAt = d.NATSampledAt.UTC().Format(time.RFC3339)
	}
	if d.Call != nil {
		r.PlatformRequestID = d.Call.RequestID
	}
	return r
}

// tsLayout is RFC 3339 in UTC with milliseconds.
const tsLayout = "2006-01-02T15:04:05.000Z07:00"
