package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentinel-edge/sentinel/agent/statefile"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/internal/buildinfo"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// Operations: what the unit tells people about itself (verdict screen, status, metrics) and
// what it lets operators do remotely (commands). The state lives beside the Daemon, keyed by
// it, so that parts and drivers reach it through methods on *Daemon:
//
//	d.SetReaderState("qr", false)   // a reader went offline
//	d.SetFireAlarm(true)            // the fire-alarm input is active
//	d.SetSelftest(ok, detail)       // a selftest finished
//	d.GateMode().Set("locked")      // the remote mode switch
//	d.RecordEvent(Event{...})       // an event on the event stream (events.go)

// opsState is the operations state of one Daemon.
type opsState struct {
	d       *Daemon
	mode    *GateMode
	metrics *opsMetrics
	events  *eventRecorder // the daemon's one path to the event stream
	// emitters are the parts that record events from their own goroutines (the commander);
	// the recorder drains only after they stopped.
	emitters   sync.WaitGroup
	changed    chan struct{} // a value means "status may have changed"
	laterArmed atomic.Bool   // a touchLater timer is pending
	up         chan struct{} // closed once the pipeline is up: d.Uplink is set

	qsMu     sync.Mutex // one queue-stats query at a time, shared by status and metrics
	qs       queue.Stats
	qsErr    error
	qsAt     time.Time
	qsCached bool

	mu             sync.Mutex
	install        config.Install
	heartbeat      time.Duration
	readers        map[string]bool
	fireAlarm      string
	platform       string
	lastPlatformOK time.Time
	selftest       *SelftestState
	unitListeners  []func()
}

// ops returns d's operations state, creating it on first use.
func (d *Daemon) ops() *opsState {
	d.opsOnce.Do(func() { d.opsState = newOpsState(d) })
	return d.opsState
}

// newOpsState builds the state; d.Outbox must be open already (the parts run after it).
func newOpsState(d *Daemon) *opsState {
	st := &opsState{
		d:         d,
		changed:   make(chan struct{}, 1),
		up:        make(chan struct{}),
		readers:   map[string]bool{},
		fireAlarm: FireAlarmUnknown,
		platform:  PlatformUnknown,
		metrics:   newOpsMetrics(),
	}
	var ob Outbox
	if d.Outbox != nil {
		ob = d.Outbox // a nil *queue.Outbox must stay a nil Outbox
	}
	topic, device, venue := "", "", ""
	if d.Cfg != nil {
		st.install, st.heartbeat = d.Cfg.Install, d.Cfg.Status.Heartbeat
		topic, device, venue = Topic(d.Cfg, StreamEvent), d.Cfg.Device.ID, d.Cfg.Device.Venue
	}
	log := d.Log
	if log == nil {
		log = slog.Default()
	}
	st.events = newEventRecorder(ob, topic, device, venue, log.With("part", "events"))
	st.mode = NewGateMode(d.Relay, func(string) { st.touch() })
	st.metrics.eventCollectors(st.events)
	return st
}

// touch says that something the status or the screen shows has changed.
func (st *opsState) touch() {
	select {
	case st.changed <- struct{}{}:
	default:
	}
	st.mu.Lock()
	ls := append([]func(){}, st.unitListeners...)
	st.mu.Unlock()
	for _, f := range ls {
		f()
	}
}

func (st *opsState) onUnitChange(f func()) {
	st.mu.Lock()
	st.unitListeners = append(st.unitListeners, f)
	st.mu.Unlock()
}

// SetReaderState records whether the named credential reader is online; drivers call it
// when a reader comes or goes. It updates the status, the screen and the metrics.
func (d *Daemon) SetReaderState(name string, online bool) {
	st := d.ops()
	st.mu.Lock()
	prev, known := st.readers[name]
	st.readers[name] = online
	st.mu.Unlock()
	st.metrics.readerOnline.WithLabelValues(name).Set(b2f(online))
	if !known || prev != online {
		st.touch()
	}
}

// SetFireAlarm records the fire-alarm input's state.
func (d *Daemon) SetFireAlarm(active bool) {
	st := d.ops()
	s := FireAlarmNormal
	if active {
		s = FireAlarmActive
	}
	st.mu.Lock()
	prev := st.fireAlarm
	st.fireAlarm = s
	st.mu.Unlock()
	st.metrics.fireAlarm.Set(b2f(active))
	if prev != s {
		st.touch()
	}
}

// SetSelftest records a selftest's outcome; it is part of the docking state.
func (d *Daemon) SetSelftest(ok bool, detail string) {
	st := d.ops()
	st.mu.Lock()
	st.selftest = &SelftestState{OK: ok, Detail: detail, At: time.Now().UTC().Format(time.RFC3339)}
	st.mu.Unlock()
	st.metrics.selftestOK.Set(b2f(ok))
	st.touch()
}

// GateMode returns the remote mode switch of the unit.
func (d *Daemon) GateMode() *GateMode { return d.ops().mode }

// uplink returns the daemon's uplink once the pipeline is up (nil before: d.Uplink is
// assigned after the parts start).
func (st *opsState) uplink() *queue.Uplink {
	select {
	case <-st.up:
		return st.d.Uplink
	default:
		return nil
	}
}

// queueStatsTTL is how long one read of the outbox's stats serves the status, the screen
// and the metrics (a busy lane asks on every passage).
var queueStatsTTL = 500 * time.Millisecond

// queueStats returns the outbox's stats, read at most once per queueStatsTTL; concurrent
// callers share one query. ctx bounds the query (at most 2s).
func (st *opsState) queueStats(ctx context.Context) (queue.Stats, error) {
	if st.d.Outbox == nil {
		return queue.Stats{}, errNoOutbox
	}
	st.qsMu.Lock()
	defer st.qsMu.Unlock()
	if st.qsCached && time.Since(st.qsAt) < queueStatsTTL {
		return st.qs, st.qsErr
	}
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st.qs, st.qsErr = st.d.Outbox.Stats(qctx)
	st.qsAt, st.qsCached = time.Now(), true
	return st.qs, st.qsErr
}

// platformCall records what a decision learnt about the platform.
func (st *opsState) platformCall(dec verify.Decision) {
	if dec.Call == nil {
		return // the platform was not asked (malformed scan)
	}
	st.metrics.platformCall(dec)
	online := dec.Mode != verify.ModeOffline
	st.setPlatform(online, dec.Reason != verify.ReasonPlatformError && dec.Reason != verify.ReasonBadResponse && online)
}

// setPlatform records reachability, and whether the call was a success (docking proven).
func (st *opsState) setPlatform(online, ok bool) {
	s := PlatformOffline
	if online {
		s = PlatformOnline
	}
	st.mu.Lock()
	prev := st.platform
	st.platform = s
	wasDocked := !st.lastPlatformOK.IsZero()
	if ok {
		st.lastPlatformOK = time.Now()
	}
	st.mu.Unlock()
	st.metrics.platformOnline.Set(b2f(online))
	if prev != s || (ok && !wasDocked) {
		st.touch()
	}
}

// status builds the status message now. ctx bounds the queue query.
func (st *opsState) status(ctx context.Context) Status {
	d := st.d
	now := time.Now()
	s := Status{
		Online:      true,
		TS:          now.UTC().Format(tsLayout),
		Clock:       clockState(),
		Device:      d.Cfg.Device.ID,
		Venue:       d.Cfg.Device.Venue,
		DeviceStyle: d.Cfg.Device.Style,
		Version:     buildinfo.Get().Version,
		Mode:        st.mode.Mode(),
		Readers:     map[string]string{},
	}
	s.LastSeen = s.TS
	if up := st.uplink(); up != nil {
		s.Uplink = up.Connected()
	}
	if qs, err := st.queueStats(ctx); err == nil {
		s.QueuePending = qs.Pending
		s.QueueOldestAge = qs.OldestPendingAge().Round(time.Second).Seconds()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s.Unit, s.Location, s.Brand = st.install.Unit, st.install.Location, st.install.Brand
	s.Style, s.InstallStatus = st.install.StyleLabel, st.install.Status
	for n, on := range st.readers {
		s.Readers[n] = "offline"
		if on {
			s.Readers[n] = "online"
		}
	}
	s.FireAlarm = st.fireAlarm
	s.Platform = st.platform
	if !st.lastPlatformOK.IsZero() {
		s.LastPlatformOK = st.lastPlatformOK.UTC().Format(time.RFC3339)
	}
	if st.selftest != nil {
		cp := *st.selftest
		s.Selftest = &cp
	}
	s.Docked = !st.lastPlatformOK.IsZero() && (st.selftest == nil || st.selftest.OK)
	return s
}

// significant is the part of a status whose change triggers a publication: everything but
// the times and the queue's age.
func significant(s Status) string {
	s.TS, s.LastSeen, s.QueueOldestAge, s.LastPlatformOK = "", "", 0, ""
	if s.Selftest != nil {
		cp := *s.Selftest
		cp.At = ""
		s.Selftest = &cp
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// opsDecider wraps the pipeline's decider to learn the platform's state and time decisions.
type opsDecider struct {
	inner Decider
	st    *opsState
}

func (o opsDecider) Decide(ctx context.Context, cred verify.Credential, passageID string) verify.Decision {
	dec := o.inner.Decide(ctx, cred, passageID)
	o.st.metrics.decision.Observe(dec.Took.Seconds())
	o.st.platformCall(dec)
	return dec
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func init() {
	RegisterPart(Part{Name: "ops", Order: 50, Setup: setupOps})
}

// setupOps wires the operations state into the core: the decider wrapper, the mode switch
// (restored from its state file), the passage observer, and the reader the core opened. Its
// run stores the events until every part that records them stopped.
func setupOps(_ context.Context, d *Daemon) (func(context.Context) error, error) {
	st := d.ops()
	if st.events.ob == nil && d.Outbox != nil {
		st.events.ob = d.Outbox // ops() was first called before the outbox opened
	}
	if d.Pipeline != nil {
		d.Pipeline.Decider = opsDecider{inner: d.Pipeline.Decider, st: st}
		d.Pipeline.Gate = st.mode
	}
	restoreGateMode(d, st)
	// Ready is called after d.Uplink is assigned and before the first passage: from then on
	// the parts may read the uplink, and a restored always_open holds the barrier.
	ready := d.Opt.Ready
	d.Opt.Ready = func() {
		close(st.up)
		if ev := st.mode.assertRestored(); ev.Type != "" {
			logRestore(d, ev)
			st.events.Emit(ev)
		}
		if ready != nil {
			ready()
		}
	}
	if d.Cfg.Scanners.QR != nil {
		d.SetReaderState("qr", true) // its port opened, or the daemon would not be here
	}
	d.Observe(func(p Passage) {
		st.metrics.passage(p)
		st.touch()
	})
	return func(ctx context.Context) error {
		evCtx, evCancel := context.WithCancel(context.WithoutCancel(ctx))
		defer evCancel()
		evDone := make(chan struct{})
		go func() { defer close(evDone); _ = st.events.Run(evCtx) }()
		<-ctx.Done()
		// The daemon halted the relay already; end the mode's hold too, without changing the
		// mode or its file: a restart restores always_open.
		if err := st.mode.releaseHold(); err != nil {
			d.Log.Warn("gate mode: releasing the hold at shutdown", "err", err)
		}
		if !st.waitEmitters() {
			d.Log.Warn("a part that records events did not stop in time; storing the queued events now", "waited", emitterWait)
		}
		evCancel() // store what is queued, then stop
		<-evDone
		return nil
	}, nil
}

// restoreGateMode puts the mode written before the last stop back in force, before the
// pipeline runs (ops_mode.go), and records it.
func restoreGateMode(d *Daemon, st *opsState) {
	if d.Cfg == nil || d.Cfg.Queue.Path == "" {
		return
	}
	mode, ev := st.mode.restore(statefile.Path(d.Cfg.Queue.Path, modeFileName))
	if mode != ModeNormal {
		st.touch()
	}
	if ev.Type != "" {
		logRestore(d, ev)
		st.events.Emit(ev)
	}
}

func logRestore(d *Daemon, ev Event) {
	if ev.Detail != "" {
		d.Log.Error("gate mode not restored as written", "mode", ev.Mode, "detail", ev.Detail)
		return
	}
	d.Log.Warn("gate mode restored", "mode", ev.Mode, "gate", ev.Gate)
}
