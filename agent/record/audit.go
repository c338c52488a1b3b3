package record

// Purposes of a platform call (AuditRow.Purpose).
const (
	PurposePassage = "passage" // deciding a passage
	PurposeRecheck = "recheck" // re-verifying a passage that allow_and_flag admitted
	PurposePing    = "ping"    // a liveness check; serves no passage
	// PurposeCommissioning: a call of sentinel try or sentinel docking-check; serves no passage.
	PurposeCommissioning = "commissioning"
)

// AuditRow is one request to the platform (the city's 调用日志), stored and published on
// stream audit with the same guarantees as passage records (docs/docking-spec.md, "Call
// audit"). A row never holds the ID number, the name or the token.
type AuditRow struct {
	ID                string  `json:"id"`
	Seq               int64   `json:"seq"`
	TS                string  `json:"ts"` // when the request was sent, RFC 3339 UTC with ms
	Device            string  `json:"device"`
	Venue             string  `json:"venue"`
	Interface         string  `json:"interface"`         // qr, idcard, face, ping
	Passage           string  `json:"passage,omitempty"` // the passage the call served
	Purpose           string  `json:"purpose"`           // passage, recheck, ping, commissioning
	Attempt           int     `json:"attempt"`           // 1; 2 for the retry
	LatencyMS         float64 `json:"latency_ms"`
	HTTPStatus        int     `json:"http_status"` // 0 when no answer arrived
	PlatformRequestID string  `json:"platform_request_id,omitempty"`
	Signature         string  `json:"signature"` // none, accepted, rejected, unknown
	Result            string  `json:"result"`    // ok, not_found, bad_response, platform_error, signature_rejected, timeout, unreachable
	Source            string  `json:"source"`    // live, cache, offline, retried: what decided the passage
	// Verdict is the re-check's verdict (pass, deny) on the row of the re-check call whose
	// answer decided it (purpose recheck, source live): a deny settles the passage only with
	// its recheck_failed alert.
	Verdict string `json:"verdict,omitempty"`
	// Lost counts audit rows lost before this one: the audit queue was full or stopped, or
	// the outbox refused them.
	Lost int64 `json:"lost,omitempty"`
	// RedirectHost is the host a 3xx answer pointed to (host[:port] only); the redirect was
	// not followed and the call is a platform_error.
	RedirectHost string `json:"redirect_host,omitempty"`
}
