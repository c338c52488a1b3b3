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
const PolicyVersion = 2

// MaxClockSkew is how far in the future a sampling time may lie before it is refused.
const MaxClockSkew = 10 * time.Minute

// Policy is the venue's admission policy.
type Policy struct {
	// Version is the operator's label of this policy (policy.version), part of the hash.
	Version string
	// Credentials are the credential kinds this unit accepts; empty accepts every kind.
	Credentials []string
	// HealthCodes are the allowed colours.
	HealthCodes []string
	// NATMaxAge is the longest time since sampling of a negative test; 0 disables the check.
	NATMaxAge time.Duration
	// MinVaccineDoses is the fewest vaccine doses on record; 0 disables the check.
	MinVaccineDoses int
	// IgnoreIdentityMatch admits a person whose name does not match the ID number (the zero
	// value requires the match).
	IgnoreIdentityMatch bool
	// FaceMinScore is the lowest face-search score a face-only passage is decided by
	// (policy.face_min_score); a match below it is face_low_score. 0 accepts any match the
	// platform reports.
	FaceMinScore float64
}

// Hash identifies the policy in force: "sha256:" and 16 hex digits of the SHA-256 of its
// canonical JSON. Equal policies hash equal whatever the order of their colours.
func (p Policy) Hash() string {
	codes := slices.Clone(p.HealthCodes)
	slices.Sort(codes)
	creds := slices.Clone(p.Credentials)
	slices.Sort(creds)
	canon, _ := json.Marshal(struct {
		Rules         int      `json:"rules"`
		Version       string   `json:"version"`
		Credentials   []string `json:"credentials"`
		HealthCodes   []string `json:"health_codes"`
		NATMaxAgeS    int64    `json:"nat_max_age_s"`
		MinDoses      int      `json:"min_vaccine_doses"`
		IdentityMatch bool     `json:"identity_match"`
		FaceMinScore  float64  `json:"face_min_score,omitempty"`
	}{PolicyVersion, p.Version, creds, codes, int64(p.NATMaxAge / time.Second), p.MinVaccineDoses, !p.IgnoreIdentityMatch, p.FaceMinScore})
	sum := sha256.Sum256(canon)
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// Decide applies the policy to a platform answer at time now. The rules run in a fixed,
// documented order and the first that fails gives the reason: identity, health code,
// nucleic-acid test, vaccination. It is pure: no I/O, no clock. A zero now means no
// trustworthy time is known: a policy that measures the test's age then denies
// nat_time_unverifiable.
func (p Policy) Decide(r Result, now time.Time) (verdict, reason string) {
	if !r.Identity.Match && !p.IgnoreIdentityMatch {
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
		case now.IsZero():
			return Deny, ReasonNATTimeUnverifiable
		case r.NAT.SampledAt.After(now.Add(MaxClockSkew)):
			return Deny, ReasonNATTimeInvalid
		case now.Sub(r.NAT.SampledAt) > p.NATMaxAge:
			return Deny, ReasonNATExpired
		}
	}
	if p.MinVaccineDoses > 0 && (r.Vaccine == nil || r.Vaccine.Doses < p.MinVaccineDoses) {
		return Deny, ReasonVaccineInsufficient
	}
	return Pass, ReasonOK
}

// Accepts says whether the unit accepts credentials of this kind.
func (p Policy) Accepts(kind string) bool {
	return len(p.Credentials) == 0 || slices.Contains(p.Credentials, kind)
}
