package open

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/seal"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/internal/secretfile"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// Unit is the unit's identity on the broker.
func Unit(cfg *config.Config) record.Unit {
	return record.Unit{Prefix: cfg.Uplink.TopicPrefix, Venue: cfg.Device.Venue, Device: cfg.Device.ID}
}

// ClientID is the uplink's MQTT client id: uplink.client_id, or sentinel-<venue>-<id>.
func ClientID(cfg *config.Config) string {
	if cfg.Uplink.ClientID != "" {
		return cfg.Uplink.ClientID
	}
	return "sentinel-" + cfg.Device.Venue + "-" + cfg.Device.ID
}

// Platform builds the platform client the config asks for: its mapping (the reference one
// when platform.mapping is empty) and, when platform.secret_file is set, its signer (the
// mapping's signing section when it has one, else platform.signing's reference scheme).
// `sentinel try` and `sentinel docking-check` build theirs here too, so that they ask the
// platform exactly as the daemon does. onPing,
// when set, is told about every ping (the audit) and trusted says whether the wall clock is
// confirmed (while it is not, signed requests are stamped with the platform's clock).
func Platform(cfg *config.Config, onPing func(verify.Call), trusted func() bool) (*verify.Client, error) {
	p := cfg.Platform
	m, err := verify.LoadMapping(p.Mapping)
	if err != nil {
		return nil, fmt.Errorf("platform.mapping: %w", err)
	}
	if err := FaceSearchMapped(cfg, m); err != nil {
		return nil, err
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
		Mapping: m, Signer: signer, OnPing: onPing, ClockTrusted: trusted,
	}), nil
}

// FaceSearchMapped refuses a face trigger (camera.trigger) whose mapping has no face search:
// the face alone would go to the 1:1 face endpoint without an ID number, and the match
// score (policy.face_min_score) would never be judged.
func FaceSearchMapped(cfg *config.Config, m *verify.Mapping) error {
	if cfg.FaceTrigger() == config.CameraTriggerNone || m.Endpoints.FaceSearch.Path != "" {
		return nil
	}
	name := cfg.Platform.Mapping
	if name == "" {
		name = "(the built-in reference)"
	}
	return fmt.Errorf("camera.trigger: %s needs endpoints.face_search in platform.mapping %s (docking interface v3's 1:N face search, with response.score)", cfg.FaceTrigger(), name)
}

// VerifierOptions are the venue policy and the offline policy of the config.
func VerifierOptions(cfg *config.Config, trusted func() bool) verify.VerifierOptions {
	pol := cfg.Policy
	maxTok := 0
	if cfg.Scanners.QR != nil {
		maxTok = cfg.Scanners.QR.MaxLength
	}
	return verify.VerifierOptions{
		Policy: verify.Policy{
			Version:             pol.Version,
			Credentials:         cfg.AcceptedCredentials(),
			HealthCodes:         pol.HealthCodes,
			NATMaxAge:           pol.NATMaxAge,
			MinVaccineDoses:     pol.MinVaccineDoses,
			IgnoreIdentityMatch: !pol.RequireIdentityMatch,
			FaceMinScore:        faceMinScore(cfg),
		},
		MaxTokenLen:   maxTok,
		Budget:        cfg.Platform.Budget,
		Offline:       cfg.Platform.OfflinePolicy,
		CacheTTL:      cfg.Platform.CacheTTL,
		ProbeInterval: cfg.Platform.ProbeInterval,
		ClockTrusted:  trusted,
	}
}

// faceMinScore is policy.face_min_score on a unit that has face-only passages
// (camera.trigger); 0 elsewhere, so that the policy hash of a unit without them stays what
// it was before face search.
func faceMinScore(cfg *config.Config) float64 {
	if cfg.FaceTrigger() == config.CameraTriggerNone {
		return 0
	}
	return cfg.Policy.FaceMinScore
}

// Capacity is the outbox's capacity and full policy (queue.*).
func Capacity(cfg *config.Config) queue.Capacity {
	return queue.Capacity{
		MaxRecords:  cfg.Queue.MaxRecords,
		MaxBytes:    cfg.Queue.MaxBytes,
		Retention:   cfg.Queue.Retention,
		OnFull:      cfg.Queue.OnFull,
		NoticeTopic: Unit(cfg).Topic(record.StreamQueue),
	}
}

// Uplink is the uplink's settings (uplink.*): brokers, client id, window, drain rate,
// backoff, TLS and the credential files.
func Uplink(cfg *config.Config, log *slog.Logger) (queue.UplinkConfig, error) {
	u := cfg.Uplink
	uc := queue.UplinkConfig{
		Brokers: u.Brokers, ClientID: ClientID(cfg),
		Window: u.MaxInflight, DrainRate: u.DrainRate, DrainBytesPerSec: u.DrainBytesPerS,
		BackoffBase: u.BackoffBase, BackoffCap: u.BackoffCap, BackoffReset: u.BackoffReset,
		Logger: log,
	}
	var err error
	if uc.TLS, err = TLS(u.TLS); err != nil {
		return uc, err
	}
	uc.Username, uc.Password, err = Credentials(cfg)
	return uc, err
}

// TLS builds the uplink's TLS settings: TLS 1.2 or newer, the broker verified against the
// configured CA (the system's roots without one), and the client certificate if set; nil
// when neither is configured. The key file is read as a secret (owner-only, bounded), the
// certificates as public files (bounded).
func TLS(t config.UplinkTLS) (*tls.Config, error) {
	if t.CAFile == "" && t.CertFile == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	public := secretfile.Options{Public: true, MaxSize: config.MaxPublicFileSize}
	if t.CAFile != "" {
		pem, err := secretfile.Read(t.CAFile, public)
		if err != nil {
			return nil, fmt.Errorf("uplink.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("uplink.tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		certPEM, err := secretfile.Read(t.CertFile, public)
		if err != nil {
			return nil, fmt.Errorf("uplink.tls.cert_file: %w", err)
		}
		keyPEM, err := secretfile.Read(t.KeyFile, secretfile.Options{})
		if err != nil {
			return nil, fmt.Errorf("uplink.tls.key_file: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		clear(keyPEM)
		if err != nil {
			return nil, fmt.Errorf("uplink.tls.cert_file, uplink.tls.key_file: %s, %s: %w", t.CertFile, t.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Credentials reads the broker's user name and password (uplink.username_file,
// uplink.password_file): the first line of each; an empty one is refused, and the password
// file must be owner-only. Both are empty when no user name file is set. The values are
// never logged.
func Credentials(cfg *config.Config) (user, pass string, err error) {
	u := cfg.Uplink
	if u.UsernameFile == "" {
		return "", "", nil
	}
	if user, err = secretfile.ReadLine(u.UsernameFile, secretfile.Options{Public: true}); err != nil {
		return "", "", fmt.Errorf("uplink.username_file: %w", err)
	}
	if pass, err = secretfile.ReadLine(u.PasswordFile, secretfile.Options{}); err != nil {
		return "", "", fmt.Errorf("uplink.password_file: %w", err)
	}
	return user, pass, nil
}

// Sealer loads the platform's public key and the unit's look-up hash key (privacy.*) and
// returns the sealer of subjects; nil without privacy.platform_key_file (records carry
// masked fields only). camera.keep: sealed seals the deciding face too.
func Sealer(cfg *config.Config, log *slog.Logger) (*seal.Sealer, error) {
	p := cfg.Privacy
	keepFace := cfg.Camera != nil && cfg.Camera.Keep == config.CameraKeepSealed
	if p.PlatformKeyFile == "" {
		if keepFace {
			return nil, fmt.Errorf("camera.keep: sealed needs privacy.platform_key_file")
		}
		return nil, nil
	}
	pub, err := privacy.LoadPublicKey(p.PlatformKeyFile)
	if err != nil {
		return nil, fmt.Errorf("privacy.platform_key_file: %w", err)
	}
	hashKey, err := privacy.LoadOrCreateHashKey(p.HashKeyFile)
	if err != nil {
		return nil, fmt.Errorf("privacy.hash_key_file: %w", err)
	}
	return seal.New(seal.Options{PlatformKey: pub, HashKey: hashKey, KeepFace: keepFace, Log: log}), nil
}
