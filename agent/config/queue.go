package config

import (
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Defaults of the queue, uplink and privacy keys of the store-and-forward issue.
const (
	DefaultQueueMaxBytes   = 400_000_000 // 400 MB: about 1,000,000 sealed passages (995,000 chained; docs/BENCHMARKS.md)
	DefaultQueueMaxRecords = 1_000_000
	DefaultQueueRetention  = 168 * time.Hour
	DefaultQueueOnFull     = "reject_new"
	DefaultMaxInflight     = 32
	DefaultDrainRate       = 500     // messages/s
	DefaultDrainBytesPerS  = 524_288 // 512 KiB/s, about 4 Mbit/s
	DefaultBackoffBase     = 250 * time.Millisecond
	DefaultBackoffCap      = 60 * time.Second // a fleet back after an outage: ~3 % of it a second (docs/queue.md)
	DefaultBackoffReset    = 10 * time.Second
	minQueueMaxBytes       = 1 << 20
	maxMaxInflight         = 65535
	defaultHashKeyFileName = "subject-hash.key"
	queueOnFullRejectNew   = "reject_new"
	queueOnFullDropOldest  = "drop_oldest"
	maxBackoffCap          = time.Hour
	minBackoffBase         = time.Millisecond
)

func queueDefaults(c *Config, present func(string) bool) {
	q := &c.Queue
	if !present("queue.max_bytes") {
		q.MaxBytes = DefaultQueueMaxBytes
	}
	if !present("queue.max_records") {
		q.MaxRecords = DefaultQueueMaxRecords
	}
	if !present("queue.retention") {
		q.Retention = DefaultQueueRetention
	}
	if q.OnFull == "" {
		q.OnFull = DefaultQueueOnFull
	}
	u := &c.Uplink
	if u.MaxInflight == 0 {
		u.MaxInflight = DefaultMaxInflight
	}
	if !present("uplink.drain_rate") {
		u.DrainRate = DefaultDrainRate
	}
	if !present("uplink.drain_bytes_per_s") {
		u.DrainBytesPerS = DefaultDrainBytesPerS
	}
	if u.BackoffBase == 0 {
		u.BackoffBase = DefaultBackoffBase
	}
	if u.BackoffCap == 0 {
		u.BackoffCap = DefaultBackoffCap
	}
	if u.BackoffReset == 0 {
		u.BackoffReset = DefaultBackoffReset
	}
	if c.Privacy.HashKeyFile == "" && c.Privacy.PlatformKeyFile != "" && c.Queue.Path != "" {
		c.Privacy.HashKeyFile = filepath.Join(filepath.Dir(c.Queue.Path), defaultHashKeyFileName)
	}
}

func queueValidate(c *Config) []Problem {
	var ps []Problem
	add := func(key, format string, args ...any) { ps = append(ps, Problemf(key, format, args...)) }
	q := c.Queue
	// 0 turns a bound off; a byte budget too small for the database's own pages is a mistake.
	if q.MaxBytes < 0 || (q.MaxBytes > 0 && q.MaxBytes < minQueueMaxBytes) {
		add("queue.max_bytes", "must be 0 (no bound) or at least %d bytes, got %d", minQueueMaxBytes, q.MaxBytes)
	}
	if q.MaxRecords < 0 {
		add("queue.max_records", "must be 0 (no bound) or more, got %d", q.MaxRecords)
	}
	if q.Retention < 0 {
		add("queue.retention", "must be >= 0 (0 purges delivered records at once), got %s", q.Retention)
	}
	if !slices.Contains([]string{queueOnFullRejectNew, queueOnFullDropOldest}, q.OnFull) {
		add("queue.on_full", "must be one of %s, %s, got %q", queueOnFullRejectNew, queueOnFullDropOldest, q.OnFull)
	}

	u := c.Uplink
	if u.MaxInflight < 1 || u.MaxInflight > maxMaxInflight {
		add("uplink.max_inflight", "must be between 1 and %d, got %d", maxMaxInflight, u.MaxInflight)
	}
	if u.DrainRate < 0 {
		add("uplink.drain_rate", "must be >= 0 messages/s (0: no bound), got %v", u.DrainRate)
	}
	if u.DrainBytesPerS < 0 {
		add("uplink.drain_bytes_per_s", "must be >= 0 bytes/s (0: no bound), got %d", u.DrainBytesPerS)
	}
	if u.BackoffBase < minBackoffBase {
		add("uplink.backoff_base", "must be at least %s, got %s", minBackoffBase, u.BackoffBase)
	}
	if u.BackoffCap < u.BackoffBase || u.BackoffCap > maxBackoffCap {
		add("uplink.backoff_cap", "must be between uplink.backoff_base (%s) and %s, got %s", u.BackoffBase, maxBackoffCap, u.BackoffCap)
	}
	if u.BackoffReset <= 0 {
		add("uplink.backoff_reset", "must be > 0, got %s", u.BackoffReset)
	}
	t := u.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		if t.CertFile == "" {
			add("uplink.tls.cert_file", "is required with uplink.tls.key_file (the client certificate and its key go together)")
		} else {
			add("uplink.tls.key_file", "is required with uplink.tls.cert_file (the client certificate and its key go together)")
		}
	}
	if t.CAFile != "" || t.CertFile != "" {
		anyTLS := false
		for _, b := range u.Brokers {
			if pu, err := url.Parse(b); err == nil && slices.Contains([]string{"ssl", "tls", "mqtts"}, strings.ToLower(pu.Scheme)) {
				anyTLS = true
			}
		}
		if !anyTLS && len(u.Brokers) > 0 {
			key := "uplink.tls.ca_file"
			if t.CAFile == "" {
				key = "uplink.tls.cert_file"
			}
			add(key, "is set but no broker in uplink.brokers uses TLS: use ssl://host:8883")
		}
	}
	if (u.UsernameFile == "") != (u.PasswordFile == "") {
		if u.UsernameFile == "" {
			add("uplink.username_file", "is required with uplink.password_file")
		} else {
			add("uplink.password_file", "is required with uplink.username_file")
		}
	}
	if c.Privacy.HashKeyFile != "" && c.Privacy.PlatformKeyFile == "" {
		add("privacy.hash_key_file", "is only used with privacy.platform_key_file (without it records carry masked fields only)")
	}
	return ps
}
