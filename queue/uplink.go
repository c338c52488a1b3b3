package queue

import (
	"context"
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
		if time.Since(connectedAt) >= stableAfter {
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
// Each round reads up to Window pending entries in insertion order, publishes them all,
// waits for their PUBACKs in order, and marks the acknowledged prefix delivered in one
// transaction. Anything after the first failure is resent on the next connection, so first
// deliveries stay in order.
func (u *Uplink) serve(ctx context.Context, c conn) error {
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	for {
		entries, err := u.ob.Pending(ctx, u.cfg.Window)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if len(entries) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-c.Lost():
				return lostError(c)
			case <-u.ob.Changed():
			case <-poll.C:
			}
			continue
		}

		acks := make([]ack, len(entries))
		for i, e := range entries {
			acks[i] = c.Publish(e.Topic, e.Payload)
		}
		n, werr := waitAcks(ctx, c, acks)
		if n < len(entries) {
			ids := make([]string, 0, len(entries)-n)
			for _, e := range entries[n:] {
				ids = append(ids, e.ID)
			}
			u.ob.addAttempts(ids)
		}
		if n > 0 {
			if err := u.markDelivered(ctx, entries[:n]); err != nil {
				return err
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
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer cancel()
	if err := u.ob.MarkDelivered(mctx, ids...); err != nil {
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
