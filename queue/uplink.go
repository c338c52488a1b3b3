package queue

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Uplink tunables; package variables so tests can shrink them.
var (
	// pollInterval is how often a connected uplink looks for pending entries when
	// Outbox.Changed has not fired (e.g. entries written by another Outbox value).
	pollInterval = time.Second
	// markTimeout bounds marking acknowledged entries after Run's ctx has ended.
	markTimeout = 5 * time.Second
	// markRetry is how long the marker waits before it tries again marks that could not be
	// written (a full disk).
	markRetry = time.Second
	// backlogReadAhead is how many backlog records one read takes at least.
	backlogReadAhead = 64
)

// Defaults of UplinkConfig.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultAckTimeout     = 15 * time.Second
	DefaultDemoteFor      = 5 * time.Minute
	defaultBackoffReset   = 10 * time.Second
)

var (
	errConnLost = errors.New("queue: connection lost")
	// errNoAnswer marks a broker that is there but does not answer in time: no CONNACK, no
	// PUBACK, no PINGRESP. Such a broker is demoted (UplinkConfig.DemoteFor).
	errNoAnswer = errors.New("queue: the broker did not answer in time")
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
	// ConnectTimeout bounds one connection attempt to one broker: the TCP (and TLS)
	// handshake and the wait for CONNACK together; default 5s. A broker that accepts the
	// connection but never answers CONNECT is given up after it and demoted.
	ConnectTimeout time.Duration
	// AckTimeout bounds the wait for the PUBACK of a publish; default 15s. Past it the
	// connection is ended, the broker demoted, and the publish and everything after it sent
	// again on the next connection.
	AckTimeout time.Duration
	// DemoteFor is how long a broker that did not answer in time (ConnectTimeout,
	// AckTimeout, or a keepalive PINGRESP) is tried only after the others; default 5m. The
	// others keep their configured order. Refused or dropped connections are not demoted:
	// they cost no time.
	DemoteFor time.Duration
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
	// OnDelivered, if set, is called after an entry is marked delivered, on one goroutine
	// at a time, in the order of marking. DeliveredAt is set to the time of marking. It must
	// not block.
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
	lastErr   atomic.Pointer[error] // why the last connection attempt failed or was lost
	lim       *drainLimiter

	demoteMu sync.Mutex
	demoted  map[string]time.Time // broker URL -> until when it is tried last
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
		cfg.BackoffReset = defaultBackoffReset
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	if cfg.DemoteFor <= 0 {
		cfg.DemoteFor = DefaultDemoteFor
	}
	cfg.Brokers = append([]string(nil), cfg.Brokers...)
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Uplink{
		ob:      ob,
		cfg:     cfg,
		log:     log.With("component", "uplink", "client_id", cfg.ClientID),
		dial:    dialPaho,
		lim:     newDrainLimiter(cfg.DrainRate, cfg.DrainBytesPerSec),
		demoted: make(map[string]time.Time),
	}
}

// Connected reports whether the uplink currently has a broker connection.
func (u *Uplink) Connected() bool { return u.connected.Load() }

// LastError returns, while the uplink is not connected, why the last connection attempt
// failed or the last connection was lost (for status lines; it never holds credentials);
// nil while connected or before the first attempt.
func (u *Uplink) LastError() error {
	if p := u.lastErr.Load(); p != nil && !u.connected.Load() {
		return *p
	}
	return nil
}

func (u *Uplink) setLastError(err error) {
	if err == nil {
		u.lastErr.Store(nil)
		return
	}
	u.lastErr.Store(&err)
}

// Run connects, publishes and reconnects until ctx ends, then returns nil. An unreachable
// broker is not an error: Run logs once per outage and keeps trying. It returns an error
// only for a configuration without brokers or when the outbox is closed under it.
func (u *Uplink) Run(ctx context.Context) error {
	if len(u.cfg.Brokers) == 0 {
		return fmt.Errorf("queue: uplink: no brokers configured: %w", ErrInvalid)
	}
	var o outage
	for {
		c, broker, err := u.connect(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			u.connectFailed(&o, err)
			if !sleepCtx(ctx, u.backoff(o.attempt)) {
				return nil
			}
			o.attempt++
			continue
		}

		connectedAt := time.Now()
		u.setLastError(nil)
		u.connected.Store(true)
		if o.down {
			u.log.Info("uplink: connected", "broker", broker,
				"outage", time.Since(o.since).Round(time.Millisecond), "failed_attempts", o.failures)
		} else {
			u.log.Info("uplink: connected", "broker", broker)
		}
		o.down, o.failures = false, 0
		err = u.serve(ctx, c)
		u.connected.Store(false)
		c.Disconnect()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrClosed) {
			return fmt.Errorf("queue: uplink: %w", err)
		}
		o.down, o.since = true, time.Now()
		u.setLastError(err)
		u.log.Warn("uplink: connection lost, reconnecting", "broker", broker, "err", err)
		if errors.Is(err, errNoAnswer) {
			u.demote(broker, err)
		}
		if time.Since(connectedAt) >= u.cfg.BackoffReset {
			o.attempt = 0
		}
		if !sleepCtx(ctx, u.backoff(o.attempt)) {
			return nil
		}
		o.attempt++
	}
}

// outage is Run's account of the current outage: the backoff attempt, whether the uplink
// is down, since when, and how many connection rounds failed.
type outage struct {
	attempt  int
	down     bool
	since    time.Time
	failures int
}

// connectFailed records a failed connection round: a WARN once per outage, DEBUG after.
func (u *Uplink) connectFailed(o *outage, err error) {
	u.setLastError(err)
	o.failures++
	if !o.down {
		o.down, o.since = true, time.Now()
		u.log.Warn("uplink: no broker reachable, retrying in the background",
			"brokers", strings.Join(u.cfg.Brokers, ","), "err", err)
		return
	}
	u.log.Debug("uplink: reconnect failed", "attempt", o.failures, "err", err)
}

// connect tries the brokers (see brokerOrder) and returns the first connection.
func (u *Uplink) connect(ctx context.Context) (conn, string, error) {
	var errs []error
	for _, b := range u.brokerOrder(time.Now()) {
		c, err := u.dial(ctx, b, u.cfg)
		if err == nil {
			if b != u.cfg.Brokers[0] {
				attrs := []any{"broker", b}
				if len(errs) > 0 {
					attrs = append(attrs, "err", errors.Join(errs...))
				}
				if d := u.demotedList(); d != "" {
					attrs = append(attrs, "demoted", d)
				}
				u.log.Warn("uplink: using a fallback broker", attrs...)
			}
			return c, b, nil
		}
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		if errors.Is(err, errNoAnswer) {
			u.demote(b, err)
		}
		errs = append(errs, fmt.Errorf("%s: %w", b, err))
	}
	return nil, "", errors.Join(errs...)
}

// brokerOrder returns the brokers in their configured order, those demoted until after now
// moved to the end (in their configured order too).
func (u *Uplink) brokerOrder(now time.Time) []string {
	u.demoteMu.Lock()
	defer u.demoteMu.Unlock()
	order := make([]string, 0, len(u.cfg.Brokers))
	var last []string
	for _, b := range u.cfg.Brokers {
		if until, ok := u.demoted[b]; ok && now.Before(until) {
			last = append(last, b)
			continue
		}
		delete(u.demoted, b)
		order = append(order, b)
	}
	return append(order, last...)
}

// BrokerOrder returns the brokers in the order the next connection will try them: the
// configured order, those demoted (they did not answer in time) last. Another client of the
// same brokers (the agent's control connection) can follow it.
func (u *Uplink) BrokerOrder() []string { return u.brokerOrder(time.Now()) }

// demotedList returns the brokers demoted now, comma-separated, in configured order.
func (u *Uplink) demotedList() string {
	u.demoteMu.Lock()
	defer u.demoteMu.Unlock()
	var d []string
	for _, b := range u.cfg.Brokers {
		if until, ok := u.demoted[b]; ok && time.Now().Before(until) {
			d = append(d, b)
		}
	}
	return strings.Join(d, ",")
}

// demote has broker tried after the others for DemoteFor, and says so (once per demotion).
func (u *Uplink) demote(broker string, why error) {
	if len(u.cfg.Brokers) < 2 {
		return // nothing to try instead
	}
	u.demoteMu.Lock()
	_, already := u.demoted[broker]
	u.demoted[broker] = time.Now().Add(u.cfg.DemoteFor)
	u.demoteMu.Unlock()
	if !already {
		u.log.Warn("uplink: broker demoted: it did not answer in time; the other brokers are tried first",
			"broker", broker, "for", u.cfg.DemoteFor, "err", why)
	}
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
// A sliding window: up to Window publishes are outstanding at once. As PUBACKs arrive, the
// acknowledged leading run (in publish order) is handed to the marker goroutine, which marks
// it delivered (whatever is waiting, in one transaction), and the freed slots are filled at
// once.
//
// What fills a slot, in this order (docs/queue.md):
//  1. live records of the priority streams (event, alert),
//  2. other live records (passage, audit, queue, ...),
//  3. backlog records of the priority streams,
//  4. other backlog records;
//
// where the backlog is what was pending when the connection came up (insertion number n <=
// horizon) and is paced by the drain limiter; live records never are. Within a class records
// go in insertion order, and a stream belongs to one class of each pair, so each stream's
// backlog and its live records each arrive, the first time, in seq order. After a failure
// everything not marked delivered is resent on the next connection, where it is backlog.
func (u *Uplink) serve(ctx context.Context, c conn) error {
	horizon, err := u.ob.lastPendingN(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s := &session{u: u, ctx: ctx, c: c, horizon: horizon, drainStart: time.Now(), m: u.startMarker(ctx)}
	s.classes = []*sendClass{
		{prio: true, after: horizon, upTo: -1},
		{after: horizon, upTo: -1},
		{prio: true, backlog: true, upTo: horizon, done: horizon == 0},
		{backlog: true, upTo: horizon, done: horizon == 0},
	}
	if horizon > 0 {
		u.log.Info("uplink: draining the backlog; live records go first", "drain_rate", u.cfg.DrainRate, "drain_bytes_per_s", u.cfg.DrainBytesPerSec)
	}
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	ackTimer := time.NewTimer(u.cfg.AckTimeout)
	defer ackTimer.Stop()
	for {
		if err := s.fill(); err != nil {
			return s.finish(err)
		}
		s.noteDrained()
		if err := s.wait(poll.C, ackTimer); err != nil || ctx.Err() != nil {
			return s.finish(err)
		}
	}
}

// session is the state of serve on one connection.
type session struct {
	u       *Uplink
	ctx     context.Context
	c       conn
	m       *marker
	classes []*sendClass
	window  []inFlight

	horizon         int64 // last insertion number of the backlog; 0 once it is drained
	drainStart      time.Time
	drained         int           // backlog records acknowledged
	backlogInFlight int           // backlog records in the window
	limitWait       time.Duration // set by fill: how long the drain limiter holds the backlog
}

// fill tops the window up from the classes in priority order (see serve).
func (s *session) fill() error {
	u := s.u
	s.limitWait = 0
	for len(s.window) < u.cfg.Window && !s.m.full() {
		cl, err := u.nextClass(s.ctx, s.classes)
		if err != nil || cl == nil {
			return err
		}
		take := cl.buf[:min(len(cl.buf), u.cfg.Window-len(s.window))]
		if cl.backlog {
			var k int
			k, s.limitWait = u.lim.admit(time.Now(), take)
			take = take[:k]
			if k == 0 {
				return nil // the backlog waits for the limiter; live classes were empty
			}
		}
		at := time.Now()
		for _, e := range take {
			s.window = append(s.window, inFlight{e: e, a: s.c.Publish(e.Topic, e.Payload), at: at, backlog: cl.backlog})
			if cl.backlog {
				s.backlogInFlight++
			}
		}
		cl.buf = cl.buf[len(take):]
	}
	return nil
}

// noteDrained logs, once, that the backlog of this connection is acknowledged.
func (s *session) noteDrained() {
	if s.horizon > 0 && s.classes[2].done && s.classes[3].done && s.backlogInFlight == 0 {
		s.u.log.Info("uplink: backlog drained", "records", s.drained, "took", time.Since(s.drainStart).Round(time.Millisecond))
		s.horizon = 0
	}
}

// wait blocks until something happens (a PUBACK at the head of the window, a commit, the
// poll, the drain limiter, the connection's loss, the head's ack timeout, a marking error,
// ctx) and handles it; it returns an error when the connection must end.
func (s *session) wait(poll <-chan time.Time, ackTimer *time.Timer) error {
	var headDone <-chan struct{}
	var timeoutC <-chan time.Time
	if len(s.window) > 0 {
		headDone = s.window[0].a.Done()
		ackTimer.Reset(time.Until(s.window[0].at.Add(s.u.cfg.AckTimeout)))
		timeoutC = ackTimer.C
	}
	var limitC <-chan time.Time
	if s.limitWait > 0 {
		lt := time.NewTimer(s.limitWait)
		defer lt.Stop()
		limitC = lt.C
	}
	select {
	case <-headDone:
		return s.collect()
	case <-s.c.Lost():
		if err := s.collect(); err != nil { // a PUBACK may have raced the loss
			return err
		}
		return lostError(s.c)
	case <-timeoutC:
		if err := s.collect(); err != nil {
			return err
		}
		return s.ackOverdue()
	case <-s.ctx.Done():
		return s.collect()
	case <-s.u.ob.Changed(): // nextClass sees the new records (appendGen)
	case <-poll: // records another Outbox value wrote are seen only here
		s.classes[0].done, s.classes[1].done = false, false
	case <-limitC:
	case err := <-s.m.errc:
		return err
	case <-s.m.room: // the marker was full and has room again: fill
	}
	return nil
}

// ackOverdue returns the error for a head of the window whose PUBACK is overdue, or nil.
func (s *session) ackOverdue() error {
	if len(s.window) == 0 {
		return nil
	}
	h := s.window[0]
	if waited := time.Since(h.at); waited >= s.u.cfg.AckTimeout {
		return fmt.Errorf("%w: no PUBACK within %v for %s seq %d (%d publishes unacknowledged)",
			errNoAnswer, s.u.cfg.AckTimeout, h.e.Stream, h.e.Seq, len(s.window))
	}
	return nil
}

// collect hands the acknowledged leading run of the window to the marker. It returns an
// error when an ack failed.
func (s *session) collect() error {
	n := 0
	var aerr error
scan:
	for ; n < len(s.window); n++ {
		select {
		case <-s.window[n].a.Done():
		default:
			break scan
		}
		if err := s.window[n].a.Error(); err != nil {
			aerr = fmt.Errorf("publish %s seq %d: %w", s.window[n].e.Stream, s.window[n].e.Seq, err)
			break
		}
	}
	if n == 0 {
		return aerr
	}
	run := entriesOf(s.window[:n])
	for _, f := range s.window[:n] {
		if f.backlog {
			s.drained++
			s.backlogInFlight--
		}
	}
	s.window = s.window[n:]
	if err := s.m.send(run); err != nil {
		return err
	}
	return aerr
}

// finish stops the marker after it marked what was handed to it, counts a failed attempt for
// what is still outstanding, and returns err (nil when ctx ended, unless the outbox closed).
func (s *session) finish(err error) error {
	s.u.ob.addAttempts(entriesOf(s.window))
	if merr := s.m.stop(); merr != nil && err == nil {
		err = merr
	}
	if s.ctx.Err() != nil && !errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// inFlight is a publish waiting for its PUBACK.
type inFlight struct {
	e       Entry
	a       ack
	at      time.Time // published
	backlog bool
}

func entriesOf(w []inFlight) []Entry {
	es := make([]Entry, len(w))
	for i, f := range w {
		es[i] = f.e
	}
	return es
}

// sendClass is one class of pending records (see serve) and what was read of it.
type sendClass struct {
	prio, backlog bool
	after, upTo   int64   // insertion numbers after < n <= upTo (upTo < 0: no bound)
	buf           []Entry // read, not yet published
	done          bool    // nothing more pending: for good (backlog), or until the next commit (live)
	doneGen       int64   // Outbox.appendGen when a live class was found empty
}

// nextClass returns the first class, in priority order, that has records to publish,
// reading more of a class when its buffer is empty; nil when all are empty.
func (u *Uplink) nextClass(ctx context.Context, classes []*sendClass) (*sendClass, error) {
	for _, cl := range classes {
		if cl.done && !cl.backlog && u.ob.appendGen.Load() != cl.doneGen {
			cl.done = false // records were committed since it was found empty
		}
		if len(cl.buf) == 0 && !cl.done {
			gen := u.ob.appendGen.Load()
			limit := u.cfg.Window
			if cl.backlog {
				limit = max(limit, backlogReadAhead) // fewer reads on the drain's path
			}
			es, err := u.ob.pendingClass(ctx, cl.prio, cl.after, cl.upTo, limit)
			if err != nil {
				return nil, err
			}
			if len(es) == 0 {
				cl.done, cl.doneGen = true, gen
				continue
			}
			cl.buf = es
			cl.after = es[len(es)-1].n
		}
		if len(cl.buf) > 0 {
			return cl, nil
		}
	}
	return nil, nil
}

// marker marks acknowledged runs delivered on its own goroutine, so the window refills
// while the transaction commits. What waits when it finishes one is marked in the next
// transaction together.
//
// A mark that cannot be written (a full disk, an I/O error) does not end the connection:
// those records did reach the broker, and reconnecting would only send the whole backlog
// again, for ever, while the disk stays full. The marker keeps them and tries again every
// markRetry (past maxUnmarked of them the window stops filling: full); it logs the failure
// once, a reminder every markLogEvery, and when marks are written again. Records whose mark
// is never written are sent again on a later connection (at least once: de-duplicate on id).
// Only a closed outbox stops it (errc).
type marker struct {
	in       chan []Entry
	errc     chan error // receives ErrClosed from marking; marking stops there
	done     chan struct{}
	err      error         // set before done is closed
	unmarked atomic.Int64  // acknowledged records handed over (send) and not yet marked
	room     chan struct{} // receives a value when the marker is no longer full
}

// Marker tunables; package variables so tests can shrink them.
var (
	// maxUnmarked bounds the acknowledged records the marker holds while marks fail.
	maxUnmarked int64 = 10000
	// markLogEvery is how often failing marks are logged again while they go on failing.
	markLogEvery = time.Minute
)

func (u *Uplink) startMarker(ctx context.Context) *marker {
	m := &marker{in: make(chan []Entry, u.cfg.Window), errc: make(chan error, 1), done: make(chan struct{}), room: make(chan struct{}, 1)}
	go func() {
		defer close(m.done)
		k := markRetrier{u: u, m: m}
		defer k.stop()
		for {
			select {
			case run, ok := <-m.in:
				if !ok {
					if len(k.waiting) > 0 {
						_ = k.mark(ctx) // a last try; what fails is sent again next time
					}
					return
				}
				if m.err != nil {
					m.unmarked.Add(-int64(len(run)))
					continue // drain: these stay pending and are sent again
				}
				k.waiting = append(k.waiting, run...)
				if k.retry != nil {
					continue // failing: wait for the retry
				}
			case <-k.retryC():
				k.retry = nil
			}
		more:
			for {
				select {
				case r, ok := <-m.in:
					if !ok {
						break more // seen again by the outer select
					}
					k.waiting = append(k.waiting, r...)
				default:
					break more
				}
			}
			if err := k.mark(ctx); errors.Is(err, ErrClosed) {
				m.err = err
				m.errc <- err
				m.unmarked.Add(-int64(len(k.waiting)))
				k.waiting = nil
			}
		}
	}()
	return m
}

// full reports that so many acknowledged records wait for marks that fail that the window
// must not take more.
func (m *marker) full() bool { return m.unmarked.Load() >= maxUnmarked }

// markRetrier is the marker goroutine's state: the acknowledged records not yet marked, and
// whether (since when) marks fail.
type markRetrier struct {
	u       *Uplink
	m       *marker // its unmarked count is lowered by what is marked
	waiting []Entry
	retry   *time.Timer // set while marks fail: when to try again
	since   time.Time   // the first failure of this run of failures
	logged  time.Time   // the last log line about it
}

func (k *markRetrier) retryC() <-chan time.Time {
	if k.retry == nil {
		return nil
	}
	return k.retry.C
}

func (k *markRetrier) stop() {
	if k.retry != nil {
		k.retry.Stop()
	}
}

// mark marks what waits. When that fails (but for a closed outbox) it keeps it, logs (once,
// then every markLogEvery) and sets the retry.
func (k *markRetrier) mark(ctx context.Context) error {
	err := k.u.markDelivered(ctx, k.waiting)
	switch {
	case err == nil:
		if !k.since.IsZero() {
			k.u.log.Warn("uplink: delivery marks are written again", "marked", len(k.waiting), "failing_for", time.Since(k.since).Round(time.Millisecond))
			k.since = time.Time{}
		}
		if k.m.unmarked.Add(-int64(len(k.waiting)))+int64(len(k.waiting)) >= maxUnmarked && !k.m.full() {
			select {
			case k.m.room <- struct{}{}: // the window may fill again
			default:
			}
		}
		k.waiting = k.waiting[:0]
		return nil
	case errors.Is(err, ErrClosed):
		return err
	}
	t := time.Now()
	switch {
	case k.since.IsZero():
		k.since, k.logged = t, t
		k.u.log.Error("uplink: delivery marks could NOT be written (a full disk?); the connection stays up, the records reached the broker and stay pending until their marks can be written (sent again after a restart: de-duplicate on id)",
			"unmarked", len(k.waiting), "err", err)
	case t.Sub(k.logged) >= markLogEvery:
		k.logged = t
		k.u.log.Error("uplink: delivery marks still cannot be written", "unmarked", len(k.waiting), "failing_for", t.Sub(k.since).Round(time.Second), "err", err)
	}
	k.retry = time.NewTimer(markRetry)
	return err
}

// send hands a run to the marker, waiting while it is behind (that bounds the window).
func (m *marker) send(run []Entry) error {
	m.unmarked.Add(int64(len(run)))
	select {
	case m.in <- run:
		return nil
	case err := <-m.errc:
		return err
	}
}

// stop waits until everything sent was marked (or marking failed) and returns the error.
func (m *marker) stop() error {
	close(m.in)
	<-m.done
	return m.err
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
// A keepalive that went unanswered also wraps errNoAnswer: the broker is there but silent.
func lostError(c conn) error {
	r, ok := c.(interface{ LostReason() error })
	if !ok || r.LostReason() == nil {
		return errConnLost
	}
	why := r.LostReason()
	if strings.Contains(why.Error(), "pingresp not received") {
		return fmt.Errorf("%w: %w (no PINGRESP to the keepalive): %w", errConnLost, errNoAnswer, why)
	}
	return fmt.Errorf("%w: %w", errConnLost, why)
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
