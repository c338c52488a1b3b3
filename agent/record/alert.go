package record

// Alert kinds.
const (
	AlertRecheckFailed    = "recheck_failed"    // the platform's answer would have denied a flagged passage
	AlertRecheckAbandoned = "recheck_abandoned" // a flagged passage could not be re-verified
	// AlertIdentityMismatch: the platform answered an ID-card (or card-and-face) query about
	// another person than the card's; the passage was denied identity_mismatch.
	AlertIdentityMismatch = "identity_mismatch"
)

// ReasonDaemonRestarted is the reason of a recheck_abandoned alert raised at start for a
// flagged passage whose re-check the previous run never settled (it crashed, lost power or
// was killed while the passage waited).
const ReasonDaemonRestarted = "daemon_restarted"

// Alert is a record on stream alert (docs/docking-spec.md).
type Alert struct {
	ID         string  `json:"id"`
	Seq        int64   `json:"seq"`
	TS         string  `json:"ts"`
	Device     string  `json:"device"`
	Venue      string  `json:"venue"`
	Kind       string  `json:"kind"`    // recheck_failed, recheck_abandoned, identity_mismatch
	Passage    string  `json:"passage"` // the passage the alert is about
	PassageTS  string  `json:"passage_ts"`
	Credential string  `json:"credential"`
	Subject    Subject `json:"subject"`
	// AnswerSubject is the person the platform's answer was about, masked (identity_mismatch).
	AnswerSubject     *Subject `json:"answer_subject,omitempty"`
	Verdict           string   `json:"verdict,omitempty"` // the re-check's verdict
	Reason            string   `json:"reason"`            // the re-check's reason, or why it was abandoned
	Policy            string   `json:"policy"`
	PlatformRequestID string   `json:"platform_request_id,omitempty"`
}
