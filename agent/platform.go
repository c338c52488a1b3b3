package agent

import (
	"fmt"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/verify"
)

// NewPlatformClient builds the platform client the config asks for: its mapping (the
// reference one when platform.mapping is empty) and, when platform.secret_file is set, its
// signer (the mapping's signing section when it has one, else platform.signing's reference
// scheme). Errors name the key to fix. onPing is told about every ping, for the audit.
// `sentinel try` and `sentinel docking-check` build theirs with it too, so that they ask
// the platform exactly as the daemon does.
func NewPlatformClient(cfg *config.Config, onPing func(verify.Call)) (*verify.Client, error) {
	p := cfg.Platform
	m, err := verify.LoadMapping(p.Mapping)
	if err != nil {
		return nil, fmt.Errorf("platform.mapping: %w", err)
	}
	var signer *verify.Signer
	if p.SecretFile != "" {
		secret, err := verify.ReadSecretFile(p.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("platform.secret_file: %w", err)
		}
		if signer, err = verify.NewMappingSigner(m, p.Signing, p.AppKey, secret); err != nil {
			return nil, err
		}
	}
	return verify.NewClient(verify.ClientOptions{
		URL: p.URL, Device: cfg.Device.ID, Venue: cfg.Device.Venue, Timeout: p.Timeout,
		Mapping: m, Signer: signer, OnPing: onPing, ClockTrusted: clockTrusted,
	}), nil
}

func newPlatformClient(cfg *config.Config, onPing func(verify.Call)) (*verify.Client, error) {
	return NewPlatformClient(cfg, onPing)
}

// VerifierOptions are the venue policy and the offline policy of the config, as the daemon
// decides by them (exported for `sentinel try`).
func VerifierOptions(cfg *config.Config, maxTokenLen int) verify.VerifierOptions {
	return verifierOptions(cfg, maxTokenLen)
}

// verifierOptions are the venue policy and the offline policy of the config.
func verifierOptions(cfg *config.Config, maxTokenLen int) verify.VerifierOptions {
	pol := cfg.Policy
	return verify.VerifierOptions{
		Policy: verify.Policy{
			Version:             pol.Version,
			Credentials:         cfg.AcceptedCredentials(),
			HealthCodes:         pol.HealthCodes,
			NATMaxAge:           pol.NATMaxAge,
			MinVaccineDoses:     pol.MinVaccineDoses,
			IgnoreIdentityMatch: !pol.RequireIdentityMatch,
		},
		MaxTokenLen:   maxTokenLen,
		Budget:        cfg.Platform.Budget,
		Offline:       cfg.Platform.OfflinePolicy,
		CacheTTL:      cfg.Platform.CacheTTL,
		ProbeInterval: cfg.Platform.ProbeInterval,
		ClockTrusted:  clockTrusted,
	}
}

// clockTrusted says whether the wall clock is confirmed (clock.go). While it is not, the
// verifier measures the nucleic-acid age against the platform's clock and the client stamps
// signed requests with it (docs/docking-spec.md, "The unit's clock").
func clockTrusted() bool { return ClockState() == ClockSynced }
