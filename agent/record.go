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
	GateHeldOpen  = "held_open"  // the barrier was held open by the always_open mode
)

// Stream and topic suffix of passage records.
const StreamPassage = "passage"

// Subject is the masked identity carried by a record. It never holds the full ID number or
// name.
type Subject struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Sealed is the full identity sealed to the platform's public key (base64 of an
	// anonymous NaCl box; only the platform can open it) and Hash a keyed look-up hash of the
	// ID number (queue_part.go, docs/queue.md). Both are empty without privacy.platform_key_file.
	Sealed string `json:"sealed,omitempty"`
	Hash   string `json:"hash,omitempty"`
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
	// Fallback is the offline policy that decided an offline passage: deny, allow_cached or
	// allow_and_flag (docs/docking-spec.md).
	Fallback string `json:"fallback,omitempty"`
	// Flagged marks a passage admitted by allow_and_flag; it is re-verified when the platform
	// returns.
	Flagged bool `json:"flagged,omitempty"`
	// Clock is "synced" when the wall clock was confirmed (NTP/RTC) at ts, else "unsynced"
	// (clock.go).
	Clock string `json:"clock"`
	// GateMode is the remote mode in force when it is not "normal": "always_open" or
	// "locked" (ops_mode.go).
	GateMode string `json:"gate_mode,omitempty"`
	// TimeSource is "platform" when the unit's clock was not trusted and the nucleic-acid age
	// was measured against the platform's clock; PlatformTime is then that clock (RFC 3339),
	// so that a record whose ts a wrong clock stamped can be placed in time. Both are absent
	// when the unit's own clock was used (docs/docking-spec.md, "The unit's clock").
	TimeSource   string `json:"time_source,omitempty"`
	PlatformTime string `json:"platform_time,omitempty"`
}

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

// tsLayout is RFC 3339 in UTC with milliseconds.
const tsLayout = "2006-01-02T15:04:05.000Z07:00"
