package verify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"slices"
	"sync"
	"time"
)

// Offline policies (platform.offline_policy): what decides a passage when the platform does not
// answer within its budget.
const (
	OfflineDeny         = "deny"           // deny, reason platform_unreachable
	OfflineAllowCached  = "allow_cached"   // pass if the same person passed online here within the TTL
	OfflineAllowAndFlag = "allow_and_flag" // pass, flag the record and re-verify it later
)

// OfflinePolicies lists the offline policies.
var OfflinePolicies = []string{OfflineDeny, OfflineAllowCached, OfflineAllowAndFlag}

// Sources of a decision, as calls carry them (Call.Source).
const (
	SourceLive    = "live"    // the platform's answer to this call decided
	SourceCache   = "cache"   // the offline cache decided
	SourceOffline = "offline" // another offline fallback (deny, or allow and flag) decided
	SourceRetried = "retried" // this attempt failed and a later one decided
)

// Tunables; package variables so tests can shrink them.
var (
	// DefaultProbeInterval is how long an open circuit breaker waits before it lets one call
	// through to probe the platform.
	DefaultProbeInterval = 10 * time.Second
	// minRetryBudget is the least time left in the decision budget for a retry to be tried.
	minRetryBudget = 100 * time.Millisecond
	// maxCacheEntries bounds the offline cache.
	maxCacheEntries = 100_000
)

// KeyedHasher hashes credentials with HMAC-SHA256 under a device-local key, so that a cache
// can recognise a person without holding the ID number or token. The key is random per
// process and never leaves memory.
//
// internal/privacy may later offer a persistent device key; until then this is verify's own.
type KeyedHasher struct{ key []byte }

// NewKeyedHasher returns a hasher with a fresh random key.
func NewKeyedHasher() *KeyedHasher {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // never fails on Linux
	return &KeyedHasher{key: k}
}

// Sum is the keyed hash of a typed value ("qr", token) or ("id", ID number).
func (h *KeyedHasher) Sum(kind, value string) [32]byte {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}

// passCache remembers, by keyed hash, who passed online at this unit and when. It lives in
// memory only: a restart empties it.
type passCache struct {
	mu      sync.Mutex
	h       *KeyedHasher
	ttl     time.Duration
	entries map[[32]byte]time.Time
}

func newPassCache(ttl time.Duration) *passCache {
	return &passCache{h: NewKeyedHasher(), ttl: ttl, entries: map[[32]byte]time.Time{}}
}

// keys are the hashes under which a credential (and the identity the platform named) is
// known.
func (c *passCache) keys(cred Credential, identityID string) [][32]byte {
	var ks [][32]byte
	if cred.Kind == KindQR && cred.QRToken != "" {
		ks = append(ks, c.h.Sum("qr", cred.QRToken))
	}
	for _, id := range []string{cred.IDNumber, identityID} {
		if id != "" {
			ks = append(ks, c.h.Sum("id", NormalizeIDNumber(id)))
		}
	}
	return ks
}

func (c *passCache) put(cred Credential, identityID string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.keys(cred, identityID) {
		c.entries[k] = at
	}
	if len(c.entries) > maxCacheEntries {
		c.prune(at)
	}
}

// prune drops expired entries, then the oldest until the cache is at 90% of its bound. It
// sorts once (O(n log n)): it runs on the decision path, under the lock.
func (c *passCache) prune(now time.Time) {
	for k, t := range c.entries {
		if now.Sub(t) > c.ttl {
			delete(c.entries, k)
		}
	}
	excess := len(c.entries) - maxCacheEntries*9/10
	if excess <= 0 {
		return
	}
	type entry struct {
		k [32]byte
		t time.Time
	}
	all := make([]entry, 0, len(c.entries))
	for k, t := range c.entries {
		all = append(all, entry{k, t})
	}
	slices.SortFunc(all, func(a, b entry) int { return a.t.Compare(b.t) })
	for _, e := range all[:excess] {
		delete(c.entries, e.k)
	}
}

func (c *passCache) hit(cred Credential, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.keys(cred, "") {
		if t, ok := c.entries[k]; ok {
			if d := now.Sub(t); d >= 0 && d <= c.ttl {
				return true
			}
		}
	}
	return false
}

// Breaker is the circuit breaker in front of the platform: after Threshold consecutive calls
// that got no answer it opens, and while open no call is made, except one probe per probe
// interval; an answer closes it. A dead platform so costs one timeout per probe interval, not
// one per passage.
type Breaker struct {
	mu        sync.Mutex
	threshold int
	interval  time.Duration
	failures  int
	open      bool
	probeAt   time.Time // when the next probe may go, while open
	probing   bool
}

// NewBreaker returns a closed breaker.
func NewBreaker(threshold int, interval time.Duration) *Breaker {
	if threshold < 1 {
		threshold = 1
	}
	if interval <= 0 {
		interval = DefaultProbeInterval
	}
	return &Breaker{threshold: threshold, interval: interval}
}

// Allow says whether a call may go now; while open it lets one probe through per interval.
func (b *Breaker) Allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true
	}
	if b.probing || now.Before(b.probeAt) {
		return false
	}
	b.probing = true
	return true
}

// Success records an answer: the breaker closes.
func (b *Breaker) Success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures, b.open, b.probing = 0, false, false
}

// Failure records a call that got no answer.
func (b *Breaker) Failure(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	if b.probing || b.failures >= b.threshold {
		b.open, b.probing, b.probeAt = true, false, now.Add(b.interval)
	}
}

// Open says whether the breaker is open (the platform is taken to be down).
func (b *Breaker) Open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}
