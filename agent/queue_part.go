package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// queueWatchInterval is how often the queue part looks for new losses to log; tests shrink it.
var queueWatchInterval = time.Minute

func init() {
	RegisterPart(Part{Name: "queue", Order: 5, Setup: setupQueue})
}

// setupQueue applies the store-and-forward settings: the outbox's capacity and full policy,
// the uplink's window, drain rate, backoff, TLS and credentials, and the sealing of personal
// data. Every error names the config key to fix.
func setupQueue(_ context.Context, d *Daemon) (func(context.Context) error, error) {
	cfg := d.Cfg
	if err := d.Outbox.SetCapacity(queue.Capacity{
		MaxRecords:  cfg.Queue.MaxRecords,
		MaxBytes:    cfg.Queue.MaxBytes,
		Retention:   cfg.Queue.Retention,
		OnFull:      cfg.Queue.OnFull,
		NoticeTopic: Topic(cfg, StreamQueue),
	}); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}

	u := &d.UplinkConfig
	u.Window = cfg.Uplink.MaxInflight
	u.DrainRate = cfg.Uplink.DrainRate
	u.DrainBytesPerSec = cfg.Uplink.DrainBytesPerS
	u.BackoffBase, u.BackoffCap, u.BackoffReset = cfg.Uplink.BackoffBase, cfg.Uplink.BackoffCap, cfg.Uplink.BackoffReset
	tc, err := queueTLS(cfg.Uplink.TLS)
	if err != nil {
		return nil, err
	}
	u.TLS = tc
	if cfg.Uplink.UsernameFile != "" {
		if u.Username, err = readCredential("uplink.username_file", cfg.Uplink.UsernameFile); err != nil {
			return nil, err
		}
		if u.Password, err = readCredential("uplink.password_file", cfg.Uplink.PasswordFile); err != nil {
			return nil, err
		}
	}

	if err := setupSealing(d); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return watchQueue(ctx, d) }, nil
}

// queueTLS builds the TLS settings: TLS 1.2 or newer, the broker verified against the
// configured CA (the system's roots without one), and the client certificate if set.
func queueTLS(t config.UplinkTLS) (*tls.Config, error) {
	if t.CAFile == "" && t.CertFile == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
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
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("uplink.tls.cert_file, uplink.tls.key_file: %s, %s: %w", t.CertFile, t.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// readCredential reads a user name or password from its file: the first line, without the
// line end. The value is never logged.
func readCredential(key, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimRight(b, "\r")
	if len(b) == 0 {
		return "", fmt.Errorf("%s: %s is empty", key, path)
	}
	return string(b), nil
}

// setupSealing loads the platform's public key and the device-local hash key and has the
// pipeline seal every subject. Without a platform key, records carry masked fields only.
func setupSealing(d *Daemon) error {
	p := d.Cfg.Privacy
	log := d.Log.With("part", "privacy")
	if p.PlatformKeyFile == "" {
		log.Info("privacy: no platform key (privacy.platform_key_file); records carry masked fields only")
		return nil
	}
	pub, err := privacy.LoadPublicKey(p.PlatformKeyFile)
	if err != nil {
		return fmt.Errorf("privacy.platform_key_file: %w", err)
	}
	hashKey, err := privacy.LoadOrCreateHashKey(p.HashKeyFile)
	if err != nil {
		return fmt.Errorf("privacy.hash_key_file: %w", err)
	}
	fp := sha256.Sum256(pub[:])
	log.Info("privacy: sealing subjects to the platform key", "key_sha256", hex.EncodeToString(fp[:8]), "hash_key", p.HashKeyFile)
	d.Pipeline.Seal = func(s *Subject, who verify.Identity) {
		if who.IDNumber == "" && who.Name == "" {
			return
		}
		sealed, err := privacy.Seal(pub, privacy.Sealed{IDNumber: who.IDNumber, Name: who.Name})
		if err != nil {
			// Masked fields only for this record; the error holds no personal data.
			log.Error("privacy: sealing failed; the record keeps masked fields only", "err", err)
			return
		}
		s.Sealed = sealed
		if who.IDNumber != "" {
			s.Hash = privacy.KeyedHash(hashKey, who.IDNumber)
		}
	}
	return nil
}

// watchQueue logs new losses (dropped, rejected, failed writes) once per interval, so a loss
// shows in the log even when no passage line is read.
func watchQueue(ctx context.Context, d *Daemon) error {
	t := time.NewTicker(queueWatchInterval)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		st, err := d.Outbox.Stats(ctx)
		if errors.Is(err, queue.ErrClosed) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			d.Log.Warn("queue: stats", "err", err)
			continue
		}
		if st.Dropped > last {
			d.Log.Error("queue: records lost", "part", "queue", "dropped", st.Dropped, "dropped_oldest", st.DroppedOldest,
				"rejected_full", st.RejectedFull, "failed_writes", st.FailedWrites, "pending", st.Pending)
			last = st.Dropped
		}
	}
}
