package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Decision modes.
const (
	ModeOnline  = "online"  // the platform answered
	ModeOffline = "offline" // it did not, and the offline policy decided
)

// DefaultBudget bounds a whole decision when VerifierOptions.Budget is 0.
const DefaultBudget = time.Second

// DefaultCacheTTL is platform.cache_ttl's default.
const DefaultCacheTTL = 12 * time.Hour

// MinTrustedYear: a wall clock before it is certainly wrong (a unit that booted at 1970
// without an RTC battery), whatever else is known about it.
const MinTrustedYear = 2024

// Time sources of a decision (Decision.TimeSource): which clock the nucleic-acid age was
// measured against.
const (
	TimeUnit     = "unit"     // the unit's own clock (trusted, or the platform gave no time)
	TimePlatform = "platform" // the platform's clock: the unit's clock was not trusted
)

// Platform is what the verifier needs of the platform client.
type Platform interface {
	Verify(ctx context.Context, cred Credential, passageID string) (Result, Call, error)
}

var _ Platform = (*Client)(nil)

// Decision is the outcome of one passage's verification. Subject holds raw personal data for
// the caller to mask or seal; it is never logged.
type Decision struct {
	Verdict      string // Pass or Deny
	Reason       string // a documented reason code
	Credential   string // the kind of credential verified (KindFace when the face decided)
	Mode         string // ModeOnline or ModeOffline
	Fallback     string // the offline policy that decided, when Mode is offline
	Flagged      bool   // admitted by allow_and_flag: to be re-verified
	Subject      Identity
	HealthCode   string
	NATSampledAt time.Time
	PolicyHash   string
	// TimeSource is the clock the policy measured the nucleic-acid age against (TimeUnit or
	// TimePlatform); empty when the platform gave no usable answer. PlatformTime is the
	// platform's clock when the unit's own clock was not trusted (zero otherwise), so that a
	// record stamped by a wrong clock can still be placed in time.
	TimeSource   string
	PlatformTime time.Time
	// Call is the last request made for this decision (the one that decided); nil when the
	// platform was not asked. Retried is the first attempt when it failed and was retried.
	// Calls returns both in order; the audit records each. (Pointers keep Decision
	// comparable.)
	Call    *Call
	Retried *Call
	Err     error // why the platform gave no usable answer, when it did not
	Took    time.Duration
	// Mismatch is the person the platform's answer was about when that is not the holder of
	// the credential (an ID card, or a face verified 1:1 with the card): the passage is
	// denied identity_mismatch and Subject stays the card holder. Nil otherwise. Raw personal
	// data, for the caller's alert: mask it, never log it. (A pointer keeps Decision
	// comparable.)
	Mismatch *Identity
	// FaceScore is the face search's match score of a face-only passage (its answer's
	// score); nil for other passages.
	FaceScore *float64
}

// Calls are every request made for the decision, in order: the retried attempt, if any,
// then the last.
func (d Decision) Calls() []Call {
	var cs []Call
	if d.Retried != nil {
		cs = append(cs, *d.Retried)
	}
	if d.Call != nil {
		cs = append(cs, *d.Call)
	}
	return cs
}

// Verifier decides passages by the platform's answer and the venue policy, and by the
// offline policy when the platform does not answer within the budget.
type Verifier struct {
	platform    Platform
	policy      Policy
	policyHash  string
	maxTokenLen int
	budget      time.Duration
	offline     string
	cache       *passCache
	breaker     *Breaker
	now         func() time.Time
	trusted     func() bool
}

// VerifierOptions configure a Verifier.
type VerifierOptions struct {
	Policy Policy
	// MaxTokenLen is the longest QR token accepted; 0 means 512.
	MaxTokenLen int
	// Budget bounds the whole decision, a retry included; 0 means DefaultBudget.
	Budget time.Duration
	// Offline is the offline policy: OfflineDeny (the default), OfflineAllowCached or
	// OfflineAllowAndFlag.
	Offline string
	// CacheTTL is how long an online pass counts for allow_cached; 0 means DefaultCacheTTL.
	CacheTTL time.Duration
	// ProbeInterval is how often an open breaker lets a probe through; 0 means
	// DefaultProbeInterval.
	ProbeInterval time.Duration
	// BreakerThreshold is how many calls in a row without an answer open the breaker; 0
	// means 1.
	BreakerThreshold int
	// Now is the wall clock; nil means time.Now.
	Now func() time.Time
	// ClockTrusted says whether the wall clock is confirmed (NTP or RTC); nil trusts it when
	// its year is at least MinTrustedYear. A clock before MinTrustedYear is never trusted.
	// When it is not, the nucleic-acid age is measured against the platform's clock
	// (Result.ServerTime), and birth dates of ID numbers are not compared with it.
	ClockTrusted func() bool
}

// NewVerifier returns a Verifier that asks p.
func NewVerifier(p Platform, opt VerifierOptions) *Verifier {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.MaxTokenLen == 0 {
		opt.MaxTokenLen = 512
	}
	if opt.Budget <= 0 {
		opt.Budget = DefaultBudget
	}
	if opt.Offline == "" {
		opt.Offline = OfflineDeny
	}
	if opt.CacheTTL <= 0 {
		opt.CacheTTL = DefaultCacheTTL
	}
	return &Verifier{
		platform: p, policy: opt.Policy, policyHash: opt.Policy.Hash(), maxTokenLen: opt.MaxTokenLen,
		budget: opt.Budget, offline: opt.Offline, cache: newPassCache(opt.CacheTTL),
		breaker: NewBreaker(opt.BreakerThreshold, opt.ProbeInterval), now: opt.Now, trusted: opt.ClockTrusted,
	}
}

// PolicyHash is the hash of the policy in force.
func (v *Verifier) PolicyHash() string { return v.policyHash }

// OfflinePolicy is the offline policy in force.
func (v *Verifier) OfflinePolicy() string { return v.offline }

// Online says whether the platform is taken to be up (the circuit breaker is closed).
func (v *Verifier) Online() bool { return !v.breaker.Open() }

// Decide verifies cred for the passage passageID. It always returns a decision: failures
// become a deny with a reason code, or the offline policy's verdict. It returns within the
// budget.
func (v *Verifier) Decide(ctx context.Context, cred Credential, passageID string) Decision {
	return v.decide(ctx, cred, passageID, true)
}

// Recheck verifies again a passage that allow_and_flag admitted: like Decide, but without an
// offline fallback (when the platform does not answer, the decision is offline,
// platform_unreachable, and the caller tries later).
func (v *Verifier) Recheck(ctx context.Context, cred Credential, passageID string) Decision {
	return v.decide(ctx, cred, passageID, false)
}

func (v *Verifier) decide(ctx context.Context, cred Credential, passageID string, fallback bool) (d Decision) {
	start := time.Now()
	d = Decision{Verdict: Deny, Mode: ModeOnline, PolicyHash: v.policyHash, Credential: cred.Kind}
	var calls []Call
	defer func() {
		d.Took = time.Since(start)
		if n := len(calls); n > 0 {
			d.Call = &calls[n-1]
			if n > 1 {
				d.Retried = &calls[0]
			}
		}
	}()
	if cred.IDNumber != "" {
		cred.IDNumber = NormalizeIDNumber(cred.IDNumber)
	}
	if cred.Kind == KindIDCard || (cred.Kind == KindFace && cred.IDNumber != "") {
		d.Subject = Identity{IDNumber: cred.IDNumber, Name: cred.Name}
	}
	if !v.policy.Accepts(cred.Kind) {
		d.Reason = ReasonCredentialRefused
		return d
	}
	if reason := v.localCheck(cred); reason != "" {
		d.Reason = reason
		return d
	}
	ctx, cancel := context.WithTimeout(ctx, v.budget)
	defer cancel()
	if !v.breaker.Allow(v.now()) {
		v.offlineDecision(&d, nil, cred, fmt.Errorf("%w: circuit breaker open, no call made", ErrUnreachable), fallback)
		return d
	}
	var (
		res Result
		err error
	)
	for attempt := 1; attempt <= 2; attempt++ {
		var call Call
		res, call, err = v.platform.Verify(ctx, cred, passageID)
		call.Attempt = attempt
		calls = append(calls, call)
		if err == nil || attempt == 2 || !call.Retryable() {
			break
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < minRetryBudget {
			break
		}
		calls[len(calls)-1].Source = SourceRetried
	}
	last := &calls[len(calls)-1]
	if errors.Is(err, ErrUnreachable) {
		v.breaker.Failure(v.now())
	} else {
		v.breaker.Success()
	}
	last.Source = SourceLive
	switch {
	case err == nil:
	case errors.Is(err, ErrUnknownCredential) && last.Interface == FaceSearch:
		d.Reason = ReasonFaceNotFound // nobody in the population looks like this face
		return d
	case errors.Is(err, ErrUnknownCredential):
		d.Reason = ReasonUnknownCredential
		return d
	case errors.Is(err, ErrUnreachable):
		v.offlineDecision(&d, last, cred, err, fallback)
		return d
	case errors.Is(err, ErrSignatureRejected):
		d.Reason, d.Err = ReasonSignatureRejected, err
		return d
	case errors.Is(err, ErrPlatform):
		d.Reason, d.Err = ReasonPlatformError, err
		return d
	default:
		d.Reason, d.Err = ReasonBadResponse, err
		return d
	}
	if last.Interface == FaceSearch && !v.faceMatched(&d, res) {
		return d
	}
	v.decideAnswer(&d, cred, res)
	return d
}

// faceMatched judges a face search's score: below policy.face_min_score the match is not
// taken (face_low_score, and the subject stays empty: the platform's best guess is not
// recorded as the person who stood there).
func (v *Verifier) faceMatched(d *Decision, res Result) bool {
	d.FaceScore = res.Score
	if res.Score == nil { // the client refuses an answer without a score; never pass on one
		d.Reason = ReasonBadResponse
		return false
	}
	if *res.Score < v.policy.FaceMinScore {
		d.Reason = ReasonFaceLowScore
		return false
	}
	return true
}

// decideAnswer decides by a usable answer: whose it is, then the venue policy.
func (v *Verifier) decideAnswer(d *Decision, cred Credential, res Result) {
	if bound(cred) {
		// The answer must be about the card that was read: an answer about another person
		// would admit the card holder on that person's record (and record them as the
		// subject). The card holder stays the subject; the other person goes to the alert.
		if got := normalizeAnswerID(res.Identity.IDNumber); got != "" && got != cred.IDNumber {
			other := res.Identity
			d.Mismatch, d.Reason = &other, ReasonIdentityMismatch
			return
		}
	} else if res.Identity.IDNumber != "" {
		d.Subject = res.Identity
	}
	d.HealthCode = res.HealthCode
	if res.NAT != nil {
		d.NATSampledAt = res.NAT.SampledAt
	}
	now := v.now()
	at := v.policyTime(d, res, now)
	d.Verdict, d.Reason = v.policy.Decide(res, at)
	if d.Verdict == Pass {
		v.cache.put(cred, res.Identity.IDNumber, now)
	}
}

// bound says whether the identity of an answer about cred must be the credential's own: an
// ID card, and a face verified 1:1 with the card's ID number. A QR token and a face
// without an ID number (1:N) are identified by the platform.
//
// An answer that names no ID number is taken to be about the ID number asked (the mapping
// makes response.id_number optional, and platforms that do not echo it answer only for the
// number they were sent); one that names another is an identity_mismatch.
func bound(cred Credential) bool {
	return cred.Kind == KindIDCard || (cred.Kind == KindFace && cred.IDNumber != "")
}

// normalizeAnswerID is an ID number from an answer as the credential's is compared:
// surrounding white space removed, a final x written X.
func normalizeAnswerID(id string) string {
	return NormalizeIDNumber(strings.TrimSpace(id))
}

// clockTrusted says whether the unit's wall clock, reading now, can be trusted.
func (v *Verifier) clockTrusted(now time.Time) bool {
	if now.Year() < MinTrustedYear {
		return false
	}
	return v.trusted == nil || v.trusted()
}

// policyTime is the time the policy measures the nucleic-acid age against, and it says so in
// d: the unit's clock when it is trusted; else the platform's clock when the answer carried
// a plausible one; else the unit's clock when it is at least plausible (an unconfirmed clock
// in the right era); else zero: the age cannot be measured (the policy denies
// nat_time_unverifiable when it needs the age).
func (v *Verifier) policyTime(d *Decision, res Result, now time.Time) time.Time {
	d.TimeSource = TimeUnit
	if v.clockTrusted(now) {
		return now
	}
	if pt := res.ServerTime; pt.Year() >= MinTrustedYear {
		d.TimeSource, d.PlatformTime = TimePlatform, pt
		return pt
	}
	if now.Year() >= MinTrustedYear {
		return now
	}
	return time.Time{}
}

// offlineDecision applies the offline policy: the platform gave no answer.
// last is the call that got no answer, nil when none was made; its Source is set.
func (v *Verifier) offlineDecision(d *Decision, last *Call, cred Credential, err error, fallback bool) {
	d.Mode, d.Err = ModeOffline, err
	src := SourceOffline
	defer func() {
		if last != nil {
			last.Source = src
		}
	}()
	if !fallback {
		d.Verdict, d.Reason = Deny, ReasonPlatformUnreachable
		return
	}
	d.Fallback = v.offline
	switch v.offline {
	case OfflineAllowCached:
		if v.cache.hit(cred, v.now()) {
			d.Verdict, d.Reason, src = Pass, ReasonOfflineCached, SourceCache
			return
		}
		d.Verdict, d.Reason = Deny, ReasonOfflineNotCached
	case OfflineAllowAndFlag:
		if cred.Kind == KindFace && cred.IDNumber == "" {
			// A face alone names nobody until the platform searched it: admitting it would
			// admit anyone (or a photo), and the re-check would have nothing to check.
			d.Verdict, d.Reason = Deny, ReasonPlatformUnreachable
			return
		}
		d.Verdict, d.Reason, d.Flagged = Pass, ReasonOfflineFlagged, true
	default:
		d.Verdict, d.Reason = Deny, ReasonPlatformUnreachable
	}
}

// birthBound is the latest birth date an ID number may carry: now, when the clock is
// trusted; otherwise none (zero), so that a unit whose clock says 1970 does not refuse
// everyone born since.
func (v *Verifier) birthBound() time.Time {
	if now := v.now(); v.clockTrusted(now) {
		return now
	}
	return time.Time{}
}

// MaxFaceJPEG bounds a face image sent to the platform.
const MaxFaceJPEG = 2 << 20

// localCheck is the check made before any call; it returns a reason code, or "" when the
// credential is well formed: a QR token of printable ASCII without spaces within the length
// bound; an ID number that passes CheckIDNumber and a name without control characters; a
// face that is a JPEG within MaxFaceJPEG.
func (v *Verifier) localCheck(c Credential) string {
	switch c.Kind {
	case KindQR:
		if len(c.QRToken) == 0 || len(c.QRToken) > v.maxTokenLen {
			return ReasonMalformedScan
		}
		for i := 0; i < len(c.QRToken); i++ {
			if b := c.QRToken[i]; b < 0x21 || b > 0x7e {
				return ReasonMalformedScan
			}
		}
		return ""
	case KindIDCard:
		if CheckIDNumber(c.IDNumber, v.birthBound()) != nil {
			return ReasonInvalidIDNumber
		}
		if c.Name == "" || len(c.Name) > 128 {
			return ReasonMalformedScan
		}
		for _, r := range c.Name {
			if r < 0x20 || r == 0x7f || r == '\uFFFD' {
				return ReasonMalformedScan
			}
		}
		return ""
	case KindFace:
		if len(c.FaceJPEG) < 4 || len(c.FaceJPEG) > MaxFaceJPEG || c.FaceJPEG[0] != 0xFF || c.FaceJPEG[1] != 0xD8 {
			return ReasonMalformedScan
		}
		if c.IDNumber != "" && CheckIDNumber(c.IDNumber, v.birthBound()) != nil {
			return ReasonInvalidIDNumber
		}
		return ""
	default:
		return ReasonMalformedScan
	}
}
