package record

// Alert kinds.
const (
	AlertRecheckFailed    = "recheck_failed"    // the platform's answer would have denied a flagged passage
	AlertRecheckAbandoned = "recheck_abandoned" // a flagged passage could not be re-verified
)

// ReasonDaemonRestarted is the reason of a recheck_abandoned alert raised at start for a
// flagged passage whose re-check the previous run never settled (it crashed, lost power or
// was killed while the passage waited).
const ReasonDaemonRestarted = "daemon_restarted"

// Alert is a record on stream alert (docs/docking-spec.md).
type Alert struct {
	ID                string  `json:"id"`
	Seq               int64   `json:"seq"`
	TS                string  `json:"ts"`
	Device            string  `json:"device"`
	Venue             string  `json:"venue"`
	Kind              string  `json:"kind"`    // recheck_failed, recheck_abandoned
	Passage           string  `json:"passage"` // the passage the alert is about
	PassageTS         string  `json:"passage_ts"`
	Credential        string  `json:"credential"`
	Subject           Subject `json:"subject"`
	Verdict           string  `json:"verdict,omitempty"` // the re-check's verdict
	Reason            string  `json:"reason"`            // the re-check's reason, or why it was abandoned
	Policy            string  `json:"policy"`
	PlatformRequestID string  `json:"platform_request_id,omitempty"`
}
