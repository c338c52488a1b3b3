package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"
)

// Verdicts.
const (
	Pass = "pass"
	Deny = "deny"
)

// PolicyVersion is the version of the policy rules below; it is part of the policy hash, so a
// change of rules changes the hash carried by every record.
const PolicyVersion = 1

// MaxClockSkew is how far in the future a sampling time may lie before it is refused.
const MaxClockSkew = 10 * time.Minute

// Policy is the venue's admission policy.
type Policy struct {
	// HealthCodes are the allowed colours.
	HealthCodes []string
	// NATMaxAge is the longest time since sampling of a negative test; 0 disables the check.
	NATMaxAge time.Duration
}

// Hash identifies the policy in force: "sha256:" and 16 hex digits of the SHA-256 of its
// canonical JSON. Equal policies hash equal whatever the order of their colours.
func (p Policy) Hash() string {
	codes := slices.Clone(p.HealthCodes)
	slices.Sort(codes)
	canon, _ := json.Marshal(struct {
		Version     int      `json:"version"`
		HealthCodes []string `json:"health_codes"`
		NATMaxAgeS  int64    `json:"nat_max_age_s"`
	}{PolicyVersion, codes, int64(p.NATMaxAge / time.Second)})
	sum := sha256.Sum256(canon)
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// Decide applies the policy to a platform answer at time now. The rules run in a fixed,
// documented order and the first that fails gives the reason: identity, health code,
// nucleic-acid test. It is pure: no I/O, no clock.
func (p Policy) Decide(r Result, now time.Time) (verdict, reason string) {
	if !r.Identity.Match {
		return Deny, ReasonIdentityMismatch
	}
	if !slices.Contains(p.HealthCodes, r.HealthCode) {
		switch r.HealthCode {
		case "green":
			return Deny, ReasonHealthCodeGreen
		case "yellow":
			return Deny, ReasonHealthCodeYellow
		case "red":
			return Deny, ReasonHealthCodeRed
		default:
			return Deny, ReasonHealthCodeUnknown
		}
	}
	if p.NATMaxAge > 0 {
		switch {
		case r.NAT == nil || r.NAT.SampledAt.IsZero():
			return Deny, ReasonNATMissing
		case r.NAT.Result == "positive":
			return Deny, ReasonNATPositive
		case r.NAT.Result != "negative":
			return Deny, ReasonNATUnknown
		case r.NAT.SampledAt.After(now.Add(MaxClockSkew)):
			return Deny, ReasonNATTimeInvalid
		case now.Sub(r.NAT.SampledAt) > p.NATMaxAge:
			return Deny, ReasonNATExpired
		}
	}
	return Pass, ReasonOK
}
