package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sentinel-edge/sentinel/verify"
)

// Defaults of the platform and policy keys added by the Verify issue (docs/docking-spec.md).
const (
	DefaultBudget        = time.Second
	DefaultOfflinePolicy = verify.OfflineDeny
	DefaultCacheTTL      = verify.DefaultCacheTTL
	DefaultProbeInterval = 10 * time.Second
	DefaultSigning       = verify.SignHMACSHA256
	maxCacheTTL          = 30 * 24 * time.Hour
	minProbeInterval     = 100 * time.Millisecond
	maxProbeInterval     = 10 * time.Minute
	maxVaccineDoses      = 10
	maxPolicyVersion     = 64
	budgetMargin         = 200 * time.Millisecond
	// DefaultFaceMinScore is policy.face_min_score: the reference platform's own threshold.
	DefaultFaceMinScore = 0.80
)

// CredentialKinds are the kinds policy.credentials may list.
var CredentialKinds = []string{verify.KindQR, verify.KindIDCard, verify.KindFace}

func platformDefaults(c *Config, present func(string) bool) {
	p := &c.Platform
	if p.Budget == 0 {
		p.Budget = max(DefaultBudget, p.Timeout+budgetMargin)
	}
	if p.OfflinePolicy == "" {
		p.OfflinePolicy = DefaultOfflinePolicy
	}
	if p.CacheTTL == 0 {
		p.CacheTTL = DefaultCacheTTL
	}
	if p.ProbeInterval == 0 {
		p.ProbeInterval = DefaultProbeInterval
	}
	if p.Signing == "" {
		p.Signing = DefaultSigning
	}
	if !present("policy.face_min_score") {
		c.Policy.FaceMinScore = DefaultFaceMinScore
	}
	if !present("policy.require_identity_match") {
		c.Policy.RequireIdentityMatch = true
	}
}

func validatePlatform(c *Config) []Problem {
	var ps []Problem
	add := func(key, format string, args ...any) { ps = append(ps, Problemf(key, format, args...)) }
	p := c.Platform
	if p.Budget < p.Timeout || p.Budget > maxPlatformTimeout {
		add("platform.budget", "must be at least platform.timeout (%s) and at most %s, got %s", p.Timeout, maxPlatformTimeout, p.Budget)
	}
	if !slices.Contains(verify.OfflinePolicies, p.OfflinePolicy) {
		add("platform.offline_policy", "must be one of %s, got %q", strings.Join(verify.OfflinePolicies, ", "), p.OfflinePolicy)
	}
	if p.CacheTTL < 0 || p.CacheTTL > maxCacheTTL {
		add("platform.cache_ttl", "must be > 0 and at most %s, got %s", maxCacheTTL, p.CacheTTL)
	}
	if p.ProbeInterval < minProbeInterval || p.ProbeInterval > maxProbeInterval {
		add("platform.probe_interval", "must be between %s and %s, got %s", minProbeInterval, maxProbeInterval, p.ProbeInterval)
	}
	if !slices.Contains(verify.SigningAlgorithms, p.Signing) {
		add("platform.signing", "must be one of %s, got %q", strings.Join(verify.SigningAlgorithms, ", "), p.Signing)
	}
	switch {
	case p.SecretFile != "" && p.AppKey == "":
		add("platform.app_key", "is required when platform.secret_file is set (signing is on)")
	case p.SecretFile == "" && p.AppKey != "":
		add("platform.secret_file", "is required when platform.app_key is set; without it requests go unsigned")
	}
	if p.AppKey != "" && (strings.ContainsAny(p.AppKey, "\r\n") || len(p.AppKey) > 256) {
		add("platform.app_key", "must be one line of at most 256 characters")
	}
	if p.Mapping != "" {
		if m, err := verify.LoadMapping(p.Mapping); err != nil {
			add("platform.mapping", "%s", mappingMsg(err))
		} else if err := m.SigningConflict(p.Signing); err != nil && p.Signing != DefaultSigning {
			add("platform.signing", "%v", err) // the explicit default is caught by sentinel check
		}
	}

	pol := c.Policy
	if pol.MinVaccineDoses < 0 || pol.MinVaccineDoses > maxVaccineDoses {
		add("policy.min_vaccine_doses", "must be between 0 (off) and %d, got %d", maxVaccineDoses, pol.MinVaccineDoses)
	}
	if pol.FaceMinScore < 0 || pol.FaceMinScore > 1 || pol.FaceMinScore != pol.FaceMinScore {
		add("policy.face_min_score", "must be a score from 0 to 1 (e.g. 0.80), got %v", pol.FaceMinScore)
	}
	if len(pol.Version) > maxPolicyVersion || strings.ContainsFunc(pol.Version, func(r rune) bool { return r < 0x20 }) {
		add("policy.version", "must be one line of at most %d characters", maxPolicyVersion)
	}
	for style, kinds := range pol.Credentials {
		key := "policy.credentials." + style
		if !slices.Contains(Styles, style) {
			add(key, "is not a device style (%s)", strings.Join(Styles, ", "))
		}
		if len(kinds) == 0 {
			add(key, "must list at least one of %s", strings.Join(CredentialKinds, ", "))
		}
		for i, k := range kinds {
			if !slices.Contains(CredentialKinds, k) {
				add(fmt.Sprintf("%s[%d]", key, i), "must be one of %s, got %q", strings.Join(CredentialKinds, ", "), k)
			}
		}
	}
	return ps
}

// mappingMsg keeps a mapping error's own words without the package prefix.
func mappingMsg(err error) string {
	msg := err.Error()
	if errors.Is(err, verify.ErrMapping) {
		msg = strings.Replace(msg, verify.ErrMapping.Error()+": ", "", 1)
	}
	return msg
}

// AcceptedCredentials are the credential kinds this unit's policy accepts: the list of its
// style in policy.credentials; nil (every kind) when the style has none.
func (c *Config) AcceptedCredentials() []string {
	return c.Policy.Credentials[c.Device.Style]
}
