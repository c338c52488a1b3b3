package queue

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Uplink tunables; package variables so tests can shrink them.
var (
	// pollInterval is how often a connected uplink looks for pending entries when
	// Outbox.Changed has not fired (e.g. entries written by another Outbox value).
	pollInterval = time.Second
	// ackTimeout bounds the wait for the PUBACKs of one window.
	ackTimeout = 15 * time.Second
	// stableAfter is how long a connection must last for the backoff to start over.
	stableAfter = 10 * time.Second
	// markTimeout bounds marking acknowledged entries after Run's ctx has ended.
	markTimeout = 5 * time.Second
)

var (
	errConnLost   = errors.New("queue: connection lost")
	errAckTimeout = errors.New("queue: timed out waiting for PUBACK")
)

// UplinkConfig configures an Uplink. Zero values take the documented defaults.
type UplinkConfig struct {
	// Brokers are tcp://host:port URLs, tried in order on every (re)connect: the first
	// reachable one is used (failover).
	Brokers []string
	// ClientID is the MQTT client identifier; default "sentinel-" plus a random suffix.
	ClientID string
	// Window is the maximum number of QoS 1 publishes in flight; default 32.
	Window int
	// BackoffBase and BackoffCap bound the full-jitter exponential reconnect backoff;
	// defaults 250ms and 30s.
	BackoffBase, BackoffCap time.Duration
	// BackoffReset is how long a connection must last for the backoff to start again from
	// BackoffBase; default 10s.
	BackoffReset time.Duration
	// DrainRate bounds the backlog drain in messages per second and DrainBytesPerSec in
	// payload bytes per second; 0 means unbounded. Live records (appended after the current
	// connection came up) are never held back by them.
	DrainRate        float64
	DrainBytesPerSec int64
	// TLS configures ssl:// (tls://, mqtts://) brokers: the CA, the client certificate. nil
	// means the system's roots. Versions below TLS 1.2 are never used.
	TLS *tls.Config
	// Username and Password, when Username is set, are sent in CONNECT. They are never
	// logged.
	Username, Password string
	// OnDelivered, if set, is called on Run's goroutine after an entry is marked delivered.
	// DeliveredAt is set to the time of marking. It must not block.
	OnDelivered func(Entry)
	// Logger receives connection state changes; nil means slog.Default(). Payloads are never
	// logged.
	Logger *slog.Logger
}

// Uplink publishes the outbox's pending entries to an MQTT broker, in order, at least once.
type Uplink struct {
	ob        *Outbox
	cfg       UplinkConfig
	log       *slog.Logger
	dial      dialFunc
	connected atomic.Bool
	lim       *drainLimiter
}

// NewUplink returns an uplink for ob; nothing happens until Run.
func NewUplink(ob *Outbox, cfg UplinkConfig) *Uplink {
	if cfg.ClientID == "" {
		cfg.ClientID = "sentinel-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	}
	if cfg.Window <= 0 {
		cfg.Window = 32
	}
	if cfg.Window > 65535 {
		cfg.Window = 65535 // MQTT packet identifiers
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 250 * time.Millisecond
	}
	if cfg.BackoffCap <= 0 {
		cfg.BackoffCap = 30 * time.Second
	}
	if cfg.BackoffCap < cfg.BackoffBase {
		cfg.BackoffCap = cfg.BackoffBase
	}
	if cfg.BackoffReset <= 0 {
		cfg.BackoffReset = stableAfter
	}
	cfg.Brokers = append([]string(nil), cfg.Brokers...)
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Uplink{
		ob:   ob,
		cfg:  cfg,
		log:  log.With("component", "uplink", "client_id", cfg.ClientID),
		dial: dialPaho,
		lim:  newDrainLimiter(cfg.DrainRate, cfg.DrainBytesPerSec),
	}
}

// Connected reports whether the uplink currently has a broker connection.
func (u *Uplink) Connected() bool { return u.connected.Load() }

// Run connects, publishes and reconnects until ctx ends, then returns nil. An unreachable
// broker is not an error: Run logs once per outage and keeps trying. It returns an error
// only for a configuration without brokers or when the outbox is closed under it.
func (u *Uplink) Run(ctx context.Context) error {
	if len(u.cfg.Brokers) == 0 {
		return fmt.Errorf("queue: uplink: no brokers configured: %w", ErrInvalid)
	}
	var (
		attempt     int
		outage      bool
		outageSince time.Time
		failures    int
	)
	for {
		c, broker, err := u.connect(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failures++
			if !outage {
				outage, outageSince = true, time.Now()
				u.log.Warn("uplink: no broker reachable, retrying in the background",
					"brokers", strings.Join(u.cfg.Brokers, ","), "err", err)
			} else {
				u.log.Debug("uplink: reconnect failed", "attempt", failures, "err", err)
			}
			if !sleepCtx(ctx, u.backoff(attempt)) {
				return nil
			}
			attempt++
			continue
		}

		connectedAt := time.Now()
		u.connected.Store(true)
		if outage {
			u.log.Info("uplink: connected", "broker", broker,
				"outage", time.Since(outageSince).Round(time.Millisecond), "failed_attempts", failures)
		} else {
			u.log.Info("uplink: connected", "broker", broker)
		}
		outage, failures = false, 0
		err = u.serve(ctx, c)
		u.connected.Store(false)
		c.Disconnect()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrClosed) {
			return fmt.Errorf("queue: uplink: %w", err)
		}
		outage, outageSince = true, time.Now()
		u.log.Warn("uplink: connection lost, reconnecting", "broker", broker, "err", err)
		if time.Since(connectedAt) >= u.cfg.BackoffReset {
			attempt = 0
		}
		if !sleepCtx(ctx, u.backoff(attempt)) {
			return nil
		}
		attempt++
	}
}

// connect tries the brokers in order and returns the first connection.
func (u *Uplink) connect(ctx context.Context) (conn, string, error) {
	var errs []error
	for _, b := range u.cfg.Brokers {
		c, err := u.dial(ctx, b, u.cfg)
		if err == nil {
			if len(errs) > 0 {
				u.log.Warn("uplink: using a fallback broker", "broker", b, "err", errors.Join(errs...))
			}
			return c, b, nil
		}
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		errs = append(errs, fmt.Errorf("%s: %w", b, err))
	}
	return nil, "", errors.Join(errs...)
}

// backoff returns a full-jitter delay for the given attempt: uniform in
// [0, min(cap, base*2^attempt)].
func (u *Uplink) backoff(attempt int) time.Duration {
	limit := u.cfg.BackoffCap
	if attempt < 32 {
		if d := u.cfg.BackoffBase << attempt; d > 0 && d < limit {
			limit = d
		}
	}
	return time.Duration(rand.Int64N(int64(limit) + 1))
}

// serve publishes pending entries over c until ctx ends (nil) or something fails (error).
//
// Live first: what was pending when the connection came up is the backlog (insertion number
// n <= horizon); what is appended afterwards is live. Each round takes up to Window live
// entries in insertion order, then fills the rest of the window with backlog entries in
// insertion order, as far as the drain limiter allows. It publishes them all, waits for
// their PUBACKs in order, and marks the acknowledged prefix delivered in one transaction.
// Anything after the first failure is resent on the next connection (where it is backlog).
// So each stream's live records and its backlog each arrive, the first time, in seq order;
// a live record overtakes the backlog.
func (u *Uplink) serve(ctx context.Context, c conn) error {
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	horizon, err := u.ob.lastPendingN(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	drainStart, drained := time.Now(), 0
	if horizon > 0 {
		u.log.Info("uplink: draining the backlog; live records go first", "drain_rate", u.cfg.DrainRate, "drain_bytes_per_s", u.cfg.DrainBytesPerSec)
	}
	for {
		entries, err := u.ob.pendingRange(ctx, horizon, -1, u.cfg.Window)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var wait time.Duration
		nLive := len(entries)
		if horizon > 0 && nLive < u.cfg.Window {
			backlog, err := u.ob.pendingRange(ctx, 0, horizon, u.cfg.Window-nLive)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if len(backlog) == 0 {
				u.log.Info("uplink: backlog drained", "records", drained, "took", time.Since(drainStart).Round(time.Millisecond))
				horizon = 0 // from now on everything pending is live
				continue
			}
			var k int
			k, wait = u.lim.admit(time.Now(), backlog)
			entries = append(entries, backlog[:k]...)
		}
		if len(entries) == 0 {
			var waitC <-chan time.Time
			var t *time.Timer
			if wait > 0 {
				t = time.NewTimer(wait)
				waitC = t.C
			}
			var err error
			select {
			case <-ctx.Done():
			case <-c.Lost():
				err = lostError(c)
			case <-u.ob.Changed():
			case <-poll.C:
			case <-waitC:
			}
			if t != nil {
				t.Stop()
			}
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return err
			}
			continue
		}

		acks := make([]ack, len(entries))
		for i, e := range entries {
			acks[i] = c.Publish(e.Topic, e.Payload)
		}
		n, werr := waitAcks(ctx, c, acks)
		if n < len(entries) {
			u.ob.addAttempts(entries[n:])
		}
		if n > 0 {
			if err := u.markDelivered(ctx, entries[:n]); err != nil {
				return err
			}
			if n > nLive {
				drained += n - nLive
			}
		}
		if werr != nil {
			e := entries[n]
			return fmt.Errorf("publish %s seq %d: %w", e.Stream, e.Seq, werr)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// waitAcks waits for acks in order and returns how many in a row succeeded. The error is nil
// if all succeeded or ctx ended.
func waitAcks(ctx context.Context, c conn, acks []ack) (int, error) {
	timer := time.NewTimer(ackTimeout)
	defer timer.Stop()
	for i, a := range acks {
		select {
		case <-a.Done():
		default:
			select {
			case <-a.Done():
			case <-c.Lost():
				// The PUBACK may have raced the loss; a completed ack still counts.
				select {
				case <-a.Done():
				default:
					return i, lostError(c)
				}
			case <-timer.C:
				return i, errAckTimeout
			case <-ctx.Done():
				return i, nil
			}
		}
		if err := a.Error(); err != nil {
			return i, err
		}
	}
	return len(acks), nil
}

// markDelivered marks entries delivered in one transaction and reports them to OnDelivered.
// It still marks after ctx has ended: those PUBACKs did arrive.
func (u *Uplink) markDelivered(ctx context.Context, entries []Entry) error {
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer cancel()
	if err := u.ob.markDelivered(mctx, entries); err != nil {
		return err
	}
	if u.cfg.OnDelivered != nil {
		at := time.UnixMilli(now().UnixMilli())
		for _, e := range entries {
			e.DeliveredAt = at
			u.cfg.OnDelivered(e)
		}
	}
	return nil
}

// lostError returns errConnLost with the reason the connection reports, if it reports one.
func lostError(c conn) error {
	if r, ok := c.(interface{ LostReason() error }); ok && r.LostReason() != nil {
		return fmt.Errorf("%w: %w", errConnLost, r.LostReason())
	}
	return errConnLost
}

// sleepCtx sleeps for d or until ctx ends; it reports whether the full sleep happened.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
