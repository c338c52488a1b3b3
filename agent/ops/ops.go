package ops

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentinel-edge/sentinel/agent/clock"
	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/events"
	"github.com/sentinel-edge/sentinel/agent/lane"
	"github.com/sentinel-edge/sentinel/agent/pipeline"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/buildinfo"
	"github.com/sentinel-edge/sentinel/internal/chain"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// Lane is what operations need of the lane; lane.Lane is one.
type Lane interface {
	State() lane.State
	Barrier() string // the relay's name; "" without a barrier
	Open(ctx context.Context) (time.Duration, error)
	SetGateMode(mode, by string) error
}

// QueueStats reads the outbox's counters; queue.Outbox is one.
type QueueStats interface {
	Stats(ctx context.Context) (queue.Stats, error)
}

// Uplink is the record uplink's state; queue.Uplink is one. The control connection follows
// its broker order (brokers that did not answer in time are tried last).
type Uplink interface {
	Connected() bool
	BrokerOrder() []string
}

// Pinger asks the platform whether it answers; verify.Client is one.
type Pinger interface {
	Ping(ctx context.Context) (verify.Call, error)
}

// Emitter records an event without blocking; events.Recorder is one.
type Emitter interface{ Emit(record.Event) }

// Counters are the other parts' counters the metrics show, read at scrape time.
type Counters struct {
	Passages  func() int64        // passages handled by the pipeline
	AuditLost func() int64        // audit rows lost
	Events    func() events.Stats // the event recorder's counters
}

// Options configure operations. Cfg, Lane, Queue, Uplink and Events are required. Cfg is
// the config at start: what a reload changes reaches operations through Apply.
type Options struct {
	Cfg    *config.Config
	Lane   Lane
	Queue  QueueStats
	Uplink Uplink
	// Control is how the control connection reaches the brokers: the uplink's brokers, TLS and
	// credentials; its client id gets "-ctl".
	Control queue.UplinkConfig
	// Pinger asks the platform while the lane is idle, every platform.probe_interval when no
	// call proved it in between; nil: no idle ping.
	Pinger Pinger
	Events Emitter
	// Selftest runs the live self-test for the selftest command; nil answers unsupported.
	// Its outcome is stored beside the queue and counts for docked.
	Selftest func(ctx context.Context) record.SelftestState
	// PlatformCheck is the docking verification the daemon repeats: at start, every
	// status.verify_interval, and when the platform comes back; nil: none.
	PlatformCheck func(ctx context.Context) record.SelftestState
	// Reload re-reads the config file for the reload command, exactly as SIGHUP does; it says
	// whether the file was taken and what changed. nil answers unsupported.
	Reload func(by string) (ok bool, detail string)
	// Verifications are the stored outcomes of sentinel selftest and docking-check, read
	// again whenever they change; nil: none.
	Verifications Verifications
	Counters      Counters
	Timing        Timing
	// Clock says whether the wall clock is trusted; nil means clock.State.
	Clock func() string
	// Now is the wall clock commands are checked against; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
	// Head, when set, gives the status (and the will) its signed head for its ts: each
	// stream's head, its signature and the unit's public key (docs/records.md).
	Head func(ctx context.Context, ts string) (head chain.Head, sig, key string)
	// Settle, when set, waits (within its ctx) until records that are on their way to the
	// outbox are stored (the audit rows of the last passages): at stop it runs before the
	// offline status is taken, so that status's head covers every record of the run.
	Settle func(ctx context.Context)
}

// Timing are the operations' tunables; zero values take the defaults.
type Timing struct {
	// StatusPoll is how often the status is rebuilt to look for changes nobody signalled (the
	// uplink, the queue depth); 1s.
	StatusPoll time.Duration
	// StatusMinInterval is the shortest gap between two published statuses, heartbeats
	// aside: a busy lane changes the queue depth with every passage; 1s.
	StatusMinInterval time.Duration
	// ControlTimeout bounds one connect, publish or subscribe of the control connection; 5s.
	ControlTimeout time.Duration
	// ReconnectBase and ReconnectCap bound the control connection's full-jitter reconnect
	// backoff; by default the uplink's (uplink.backoff_base, uplink.backoff_cap).
	ReconnectBase, ReconnectCap time.Duration
	// SubscribeRetry is how often a failed or refused command subscription is tried again
	// while the connection stays up; 30s.
	SubscribeRetry time.Duration
	// QueueStatsTTL is how long one read of the outbox's stats serves the status, the screen
	// and the metrics; 500ms.
	QueueStatsTTL time.Duration
	// ScreenRefresh is how often the screen's unit state is rebuilt when nothing signalled a
	// change; 2s.
	ScreenRefresh time.Duration
	// BindRetry is how often a screen or metrics listener that could not bind tries again; 5s.
	BindRetry time.Duration
	// Commands bound the remote commands.
	MaxCommandBytes int           // largest payload read; 8 KiB
	CommandSkew     time.Duration // how far in the future issued_at may lie; 1m
	RefusalBurst    int           // refusals recorded as events in a burst; 20
	RefusalEvery    time.Duration // one more refusal recorded per; 3s
	MaxSeen         int           // unexpired command ids kept; 10000
}

func (t Timing) withDefaults(u queue.UplinkConfig) Timing {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.StatusPoll, time.Second)
	def(&t.StatusMinInterval, time.Second)
	def(&t.ControlTimeout, 5*time.Second)
	def(&t.ReconnectBase, u.BackoffBase)
	def(&t.ReconnectBase, config.DefaultBackoffBase)
	def(&t.ReconnectCap, u.BackoffCap)
	def(&t.ReconnectCap, config.DefaultBackoffCap)
	def(&t.SubscribeRetry, 30*time.Second)
	def(&t.QueueStatsTTL, 500*time.Millisecond)
	def(&t.ScreenRefresh, 2*time.Second)
	def(&t.BindRetry, 5*time.Second)
	def(&t.CommandSkew, time.Minute)
	def(&t.RefusalEvery, 3*time.Second)
	if t.MaxCommandBytes <= 0 {
		t.MaxCommandBytes = 8 << 10
	}
	if t.RefusalBurst <= 0 {
		t.RefusalBurst = 20
	}
	if t.MaxSeen <= 0 {
		t.MaxSeen = 10000
	}
	return t
}

// Ops is the operations of one unit. Its hooks (Passage, Changed, ReaderState) never block.
type Ops struct {
	opt     Options
	unit    record.Unit
	t       Timing
	metrics *metrics
	cmds    *commander
	scr     *screenPart                   // nil with screen.listen off
	live    atomic.Pointer[config.Config] // the config in force: Options.Cfg, then each reload's

	changed    chan struct{} // a value means "status may have changed"
	laterArmed atomic.Bool   // a touchLater timer is pending
	listeners  []func()      // told of every change (the screen); set in New

	qsMu     sync.Mutex // one queue-stats query at a time, shared by status and metrics
	qs       queue.Stats
	qsErr    error
	qsAt     time.Time
	qsCached bool

	verifyKick chan struct{} // a value asks for a platform check now (the platform came back)

	mu             sync.Mutex
	install        config.Install
	heartbeat      time.Duration
	status         config.Status   // the docking rule's settings
	platformCfg    config.Platform // the platform settings in force (a reload changes them)
	readers        map[string]bool
	platform       string
	platformSince  time.Time
	lastPlatformOK time.Time // the last successful answer
	lastAnswer     time.Time // the last answer of any kind (the idle probe's "proved lately")
	lastPassage    *record.LastPassage
	evidence       evidence
}

// New builds operations: it reads the operator keys and the command nonces' state file. Run
// runs them.
func New(opt Options) (*Ops, error) {
	if opt.Clock == nil {
		opt.Clock = clock.State
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	cfg := opt.Cfg
	o := &Ops{
		opt:  opt,
		unit: record.Unit{Prefix: cfg.Uplink.TopicPrefix, Venue: cfg.Device.Venue, Device: cfg.Device.ID},
		t:    opt.Timing.withDefaults(opt.Control), changed: make(chan struct{}, 1), verifyKick: make(chan struct{}, 1),
		install: cfg.Install, heartbeat: cfg.Status.Heartbeat, status: cfg.Status, platformCfg: cfg.Platform,
		readers: map[string]bool{}, platform: record.PlatformUnknown, platformSince: time.Now(),
	}
	o.live.Store(cfg)

	o.metrics = newMetrics(o)
	o.scr = o.newScreen()
	cmds, err := newCommander(o)
	if err != nil {
		return nil, err
	}
	o.cmds = cmds
	o.refreshEvidence()
	return o, nil
}

// touch says that something the status or the screen shows has changed.
func (o *Ops) touch() {
	select {
	case o.changed <- struct{}{}:
	default:
	}
	for _, f := range o.listeners {
		f()
	}
}

// Changed is the lane's hook: its gate mode, fire alarm or tamper changed.
func (o *Ops) Changed() {
	st := o.opt.Lane.State()
	o.metrics.fireAlarm.Set(b2f(st.FireAlarm == record.FireAlarmActive))
	o.touch()
}

// ReaderState returns the hook a credential reader's driver calls when the reader goes
// offline (with why) or comes back: the status, the screen and the metrics show it, and it
// is recorded as a reader_offline / reader_online event with the given source.
func (o *Ops) ReaderState(source string) func(online bool, err error) {
	return func(online bool, err error) {
		o.setReader(source, online)
		e := record.Event{Type: record.EventReaderOnline, Source: source}
		if !online {
			e.Type = record.EventReaderOffline
			if err != nil {
				e.Detail = err.Error()
			}
		}
		o.opt.Events.Emit(e)
	}
}

// CameraState is the OnState of a streaming camera (a face trigger's): the camera is a reader
// of the status ("camera"), and its transitions are camera_offline (with why) and
// camera_online events. The first frame at start sets the state without an event: only a
// camera that was offline comes back online.
func (o *Ops) CameraState() func(online bool, err error) {
	return func(online bool, err error) {
		o.mu.Lock()
		_, known := o.readers[record.SourceCamera]
		o.mu.Unlock()
		o.setReader(record.SourceCamera, online)
		if online && !known {
			return
		}
		e := record.Event{Type: record.EventCameraOnline, Source: record.SourceCamera}
		if !online {
			e.Type = record.EventCameraOffline
			if err != nil {
				e.Detail = err.Error()
			}
			o.FaceHint("") // no frames: the last hint no longer says anything
		}
		o.opt.Events.Emit(e)
	}
}

// setReader records whether the named reader is online.
func (o *Ops) setReader(name string, online bool) {
	o.mu.Lock()
	prev, known := o.readers[name]
	o.readers[name] = online
	o.mu.Unlock()
	o.metrics.readerOnline.WithLabelValues(name).Set(b2f(online))
	if !known || prev != online {
		o.touch()
	}
}

// ReaderUp records that a reader opened at start (before its driver reports anything).
func (o *Ops) ReaderUp(name string) { o.setReader(name, true) }

// Readers returns the readers' states (name → online).
func (o *Ops) Readers() map[string]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := make(map[string]bool, len(o.readers))
	for k, v := range o.readers {
		m[k] = v
	}
	return m
}

// Passage is the pipeline's observer: the metrics count the passage, the platform's state
// follows its calls, and the status and the screen are told.
func (o *Ops) Passage(out pipeline.Outcome) {
	o.metrics.passage(out)
	o.scr.show(out.Record)
	r := out.Record
	o.mu.Lock()
	o.lastPassage = &record.LastPassage{TS: r.TS, Verdict: r.Verdict, Reason: r.Reason, Gate: r.Gate, Mode: r.Mode}
	o.mu.Unlock()
	if len(out.Calls) > 0 { // the platform was asked (not a malformed scan)
		online := r.Mode != verify.ModeOffline
		ok := online && r.Reason != verify.ReasonPlatformError && r.Reason != verify.ReasonBadResponse
		o.setPlatform(online, ok, "a passage was decided "+r.Mode+" ("+r.Reason+")")
	}
	o.touch()
}

// setPlatform records reachability (online: the platform answered), whether the answer was
// a success, and why, for the log. A change is logged: WARN when the platform is lost,
// INFO when it is back.
func (o *Ops) setPlatform(online, ok bool, why string) {
	s := record.PlatformOffline
	if online {
		s = record.PlatformOnline
	}
	now := time.Now()
	o.mu.Lock()
	prev, since := o.platform, o.platformSince
	wasOK := !o.lastPlatformOK.IsZero()
	if prev != s {
		o.platform, o.platformSince = s, now
	}
	if online {
		o.lastAnswer = now
	}
	if ok {
		o.lastPlatformOK = now
	}
	pc := o.platformCfg
	o.mu.Unlock()
	o.metrics.platformOnline.Set(b2f(online))
	switch {
	case prev == s:
	case s == record.PlatformOffline:
		o.opt.Log.Warn("platform unreachable; passages are decided by the offline policy", "why", why, "offline_policy", pc.OfflinePolicy, "url", pc.URL)
	case prev == record.PlatformOffline:
		o.opt.Log.Info("platform reachable again", "outage", now.Sub(since).Round(time.Millisecond), "why", why)
		if pc := o.platformCheck(); pc != nil && !pc.OK {
			select { // a failed platform check need not wait for its retry
			case o.verifyKick <- struct{}{}:
			default:
			}
		}
	default:
		o.opt.Log.Info("platform reachable", "why", why)
	}
	if prev != s || (ok && !wasOK) {
		o.touch()
	}
}

// queueStats returns the outbox's stats, read at most once per QueueStatsTTL; concurrent
// callers share one query. ctx bounds the query (at most 2s).
func (o *Ops) queueStats(ctx context.Context) (queue.Stats, error) {
	o.qsMu.Lock()
	defer o.qsMu.Unlock()
	if o.qsCached && time.Since(o.qsAt) < o.t.QueueStatsTTL {
		return o.qs, o.qsErr
	}
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	o.qs, o.qsErr = o.opt.Queue.Stats(qctx)
	o.qsAt, o.qsCached = time.Now(), true
	return o.qs, o.qsErr
}

// Status builds the status message now. ctx bounds the queue query.
func (o *Ops) Status(ctx context.Context) record.Status {
	cfg := o.opt.Cfg
	ls := o.opt.Lane.State()
	s := record.Status{
		Online:      true,
		TS:          record.TS(time.Now()),
		Clock:       o.opt.Clock(),
		Device:      cfg.Device.ID,
		Venue:       cfg.Device.Venue,
		DeviceStyle: cfg.Device.Style,
		Version:     buildinfo.Get().Version,
		Mode:        ls.GateMode,
		FireAlarm:   ls.FireAlarm,
		Readers:     map[string]string{},
		Uplink:      o.opt.Uplink.Connected(),
	}
	s.LastSeen = s.TS
	if o.opt.Head != nil {
		s.Head, s.HeadSig, s.ChainKey = o.opt.Head(ctx, s.TS)
	}
	if qs, err := o.queueStats(ctx); err == nil {
		s.QueuePending = qs.Pending
		s.QueueOldestAge = qs.OldestPendingAge().Round(time.Second).Seconds()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	s.Unit, s.Location, s.Brand = o.install.Unit, o.install.Location, o.install.Brand
	s.Style, s.InstallStatus = o.install.StyleLabel, o.install.Status
	for n, on := range o.readers {
		s.Readers[n] = record.ReaderOffline
		if on {
			s.Readers[n] = record.ReaderOnline
		}
	}
	s.Platform, s.PlatformSince = o.platform, record.TS(o.platformSince)
	if !o.lastPlatformOK.IsZero() {
		s.LastPlatformOK = o.lastPlatformOK.UTC().Format(time.RFC3339)
	}
	s.Tamper = record.TamperUnknown
	if cfg.Inputs.Tamper != nil {
		s.Tamper = map[bool]string{true: record.TamperActive, false: record.TamperNormal}[ls.Tamper]
	}
	if o.lastPassage != nil {
		lp := *o.lastPassage
		s.LastPassage = &lp
	}
	ev := o.evidence
	s.Selftest, s.DockingCheck, s.PlatformCheck = clone(ev.selftest), clone(ev.dockingCheck), clone(ev.platformCheck)
	docked, d, p := dockingRule(dockingFacts{
		now: time.Now(), install: o.install, selftest: ev.selftest, dockingCheck: ev.dockingCheck, platformCheck: ev.platformCheck,
		lastPlatformOK: o.lastPlatformOK, maxAge: o.status.DockedMaxAge, maxSilence: o.status.PlatformMaxSilence,
	})
	s.Docked, s.Docking, s.Progress = docked, &d, &p
	return s
}

func clone(v *record.SelftestState) *record.SelftestState {
	if v == nil {
		return nil
	}
	cp := *v
	cp.Failed = append([]string(nil), v.Failed...)
	return &cp
}

// significant is the part of a status whose change triggers a publication: everything but
// the times and the queue's age.
func significant(s record.Status) string {
	s.TS, s.LastSeen, s.QueueOldestAge, s.LastPlatformOK, s.HeadSig = "", "", 0, "", ""
	if s.PlatformCheck != nil { // repeated every verify_interval: its time is no change
		cp := *s.PlatformCheck
		cp.At = ""
		s.PlatformCheck = &cp
	}
	if s.Docking != nil && s.Docking.Check == record.SelftestPlatform {
		cp := *s.Docking
		cp.At = ""
		s.Docking = &cp
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// Run runs the control connection (status and commands), the verdict screen and the
// metrics until ctx ends, then publishes the offline status and returns once the command in
// hand was answered and recorded.
func (o *Ops) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { o.serveScreen(ctx) })
	wg.Go(func() { o.serveMetrics(ctx) })
	wg.Go(func() { o.probe(ctx) })
	wg.Go(func() { o.verify(ctx) })
	c := newControl(o)
	err := c.run(ctx)
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
