package record

// Gate outcomes of a passage or an event: what the barrier did.
const (
	GateOpened    = "opened"     // the barrier was told to open
	GateNotOpened = "not_opened" // denied, or the barrier could not be driven
	GateNoBarrier = "no_barrier" // a unit without a barrier (reduced gate, handheld)
	GateHeldOpen  = "held_open"  // held open (the always_open gate mode, a fire alarm)
	GateReleased  = "released"   // a hold ended (the fire alarm cleared)
)

// Gate modes: the remote mode switch of a lane (the mode command; gate_mode in records, mode
// in the status).
const (
	GateModeNormal     = "normal"      // the verdict decides
	GateModeAlwaysOpen = "always_open" // the barrier is held open; passages are still checked and recorded
	GateModeLocked     = "locked"      // the barrier never opens; passages are still checked and recorded
)

// GateModes lists the gate modes in documentation order.
var GateModes = []string{GateModeNormal, GateModeAlwaysOpen, GateModeLocked}

// Subject is the masked identity carried by a record. It never holds the full ID number or
// name.
type Subject struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Sealed is the full identity sealed to the platform's public key (base64 of an
	// anonymous NaCl box; only the platform can open it) and Hash a keyed look-up hash of the
	// ID number (docs/queue.md). Both are empty without privacy.platform_key_file.
	Sealed string `json:"sealed,omitempty"`
	Hash   string `json:"hash,omitempty"`
}

// Passage is a passage as it is stored and published on <prefix>/<venue>/<device>/passage.
type Passage struct {
	ID                string  `json:"id"`
	Seq               int64   `json:"seq"`
	TS                string  `json:"ts"`
	Device            string  `json:"device"`
	Venue             string  `json:"venue"`
	Credential        string  `json:"credential"`
	Subject           Subject `json:"subject"`
	Verdict           string  `json:"verdict"`
	Reason            string  `json:"reason"`
	Mode              string  `json:"mode"` // online or offline: who decided (verify.ModeOnline, verify.ModeOffline)
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
	// Clock is "synced" when the wall clock was confirmed (NTP/RTC) at ts, else "unsynced".
	Clock string `json:"clock"`
	// GateMode is the gate mode in force when it is not normal: always_open or locked.
	GateMode string `json:"gate_mode,omitempty"`
	// TimeSource is "platform" when the unit's clock was not trusted and the nucleic-acid age
	// was measured against the platform's clock; PlatformTime is then that clock (RFC 3339),
	// so that a record whose ts a wrong clock stamped can be placed in time. Both are absent
	// when the unit's own clock was used (docs/docking-spec.md, "The unit's clock").
	TimeSource   string `json:"time_source,omitempty"`
	PlatformTime string `json:"platform_time,omitempty"`
	// Face says how the face of a face passage (credential face) was checked; absent for
	// other credentials.
	Face *FaceCheck `json:"face,omitempty"`
}

// FaceCheck is how a passage's face was checked.
type FaceCheck struct {
	// Check is search for a face-only passage (the platform's 1:N face search named the
	// person) or card for a face checked against the ID card's number (1:1).
	Check string `json:"check"`
	// Score is the face search's match score, 0 to 1, as the platform answered it (absent
	// when it answered none: not found, offline, or a 1:1 check).
	Score *float64 `json:"score,omitempty"`
	// Liveness is how the unit made sure a live person stood there: none for a plain camera
	// (no IR, no depth), so that a venue can refuse face-only passage by policy.
	Liveness string `json:"liveness"`
}

// Face checks (FaceCheck.Check) and liveness (FaceCheck.Liveness).
const (
	FaceCheckSearch = "search"
	FaceCheckCard   = "card"
	LivenessNone    = "none"
)
