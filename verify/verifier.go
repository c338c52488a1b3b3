package verify

import (
	"context"
	"errors"
	"time"
)

// Decision modes.
const (
	ModeOnline  = "online"  // the platform answered
	ModeOffline = "offline" // it did not, and the offline policy decided
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
	Mode         string // ModeOnline or ModeOffline
	Subject      Identity
	HealthCode   string
	NATSampledAt time.Time
	PolicyHash   string
	Call         *Call // nil when the platform was not asked
	Err          error // why the platform gave no usable answer, when it did not
	Took         time.Duration
}

// Verifier decides passages by the platform's answer and the venue policy.
type Verifier struct {
	platform    Platform
	policy      Policy
	policyHash  string
	maxTokenLen int
	now         func() time.Time
}

// VerifierOptions configure a Verifier.
type VerifierOptions struct {
	Policy Policy
	// MaxTokenLen is the longest QR token accepted; 0 means 512.
	MaxTokenLen int
	// Now is the wall clock; nil means time.Now.
	Now func() time.Time
}

// NewVerifier returns a Verifier that asks p.
func NewVerifier(p Platform, opt VerifierOptions) *Verifier {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.MaxTokenLen == 0 {
		opt.MaxTokenLen = 512
	}
	return &Verifier{platform: p, policy: opt.Policy, policyHash: opt.Policy.Hash(), maxTokenLen: opt.MaxTokenLen, now: opt.Now}
}

// PolicyHash is the hash of the policy in force.
func (v *Verifier) PolicyHash() string { return v.policyHash }

// Decide verifies cred for the passage passageID. It always returns a decision: failures
// become a deny with a reason code. It returns within the client's timeout.
func (v *Verifier) Decide(ctx context.Context, cred Credential, passageID string) Decision {
	start := time.Now()
	d := Decision{Verdict: Deny, Mode: ModeOnline, PolicyHash: v.policyHash}
	if cred.Kind == KindIDCard {
		d.Subject = Identity{IDNumber: cred.IDNumber, Name: cred.Name}
	}
	if !v.wellFormed(cred) {
		d.Reason = ReasonMalformedScan
		d.Took = time.Since(start)
		return d
	}
	res, call, err := v.platform.Verify(ctx, cred, passageID)
	d.Call = &call
	d.Took = time.Since(start)
	switch {
	case err == nil:
	case errors.Is(err, ErrUnknownCredential):
		d.Reason = ReasonUnknownCredential
		return d
	case errors.Is(err, ErrUnreachable):
		d.Mode, d.Reason, d.Err = ModeOffline, ReasonPlatformUnreachable, err
		return d
	case errors.Is(err, ErrPlatform):
		d.Reason, d.Err = ReasonPlatformError, err
		return d
	default:
		d.Reason, d.Err = ReasonBadResponse, err
		return d
	}
	if res.Identity.IDNumber != "" {
		d.Subject = res.Identity
	}
	d.HealthCode = res.HealthCode
	if res.NAT != nil {
		d.NATSampledAt = res.NAT.SampledAt
	}
	d.Verdict, d.Reason = v.policy.Decide(res, v.now())
	return d
}

// wellFormed is the local check made before any call: a QR token of printable ASCII without
// spaces, within the length bound.
func (v *Verifier) wellFormed(c Credential) bool {
	switch c.Kind {
	case KindQR:
		if len(c.QRToken) == 0 || len(c.QRToken) > v.maxTokenLen {
			return false
		}
		for i := 0; i < len(c.QRToken); i++ {
			if b := c.QRToken[i]; b < 0x21 || b > 0x7e {
				return false
			}
		}
		return true
	case KindIDCard:
		return c.IDNumber != ""
	default:
		return false
	}
}
