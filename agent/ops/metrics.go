package ops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/sentinel-edge/sentinel/agent/clock"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/events"
	"github.com/sentinel-edge/sentinel/agent/pipeline"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/buildinfo"
	"github.com/sentinel-edge/sentinel/verify"
)

// opsMetrics are the daemon's Prometheus metrics (docs/metrics.md). Each daemon has its own
// registry, so tests can run several.
type metrics struct {
	reg                *prometheus.Registry
	passages           *prometheus.CounterVec
	lost               prometheus.Counter
	gates              *prometheus.CounterVec
	decision           prometheus.Histogram
	platformLatency    *prometheus.HistogramVec
	platformCalls      *prometheus.CounterVec
	platformOnline     prometheus.Gauge
	readerOnline       *prometheus.GaugeVec
	fireAlarm          prometheus.Gauge
	selftestOK         prometheus.Gauge
	controlUp          prometheus.Gauge
	commandsSubscribed prometheus.Gauge
	commands           *prometheus.CounterVec
	statusPublished    prometheus.Counter
	screenClients      prometheus.Gauge
	screenDropped      *prometheus.CounterVec
}

func newMetrics(o *Ops) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.passages = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sentinel_passages_total",
		Help: "Passages decided, by verdict, reason code and mode (online/offline)."}, []string{"verdict", "reason", "mode"})
	m.lost = prometheus.NewCounter(prometheus.CounterOpts{Name: "sentinel_passages_lost_total",
		Help: "Passages whose record the outbox refused (the gate still followed the decision)."})
	m.gates = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sentinel_gate_total",
		Help: "What the barrier did per passage: opened, not_opened, held_open, no_barrier."}, []string{"gate"})
	m.decision = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sentinel_decision_duration_seconds",
		Help:    "Time from the start of a decision to the verdict, platform call included.",
		Buckets: []float64{.005, .01, .025, .05, .1, .2, .4, .8, 1.6, 3.2}})
	m.platformLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sentinel_platform_call_duration_seconds",
		Help:    "Latency of calls to the verification platform, by interface (qr, idcard, ping).",
		Buckets: []float64{.01, .025, .05, .1, .2, .4, .8, 1.6, 3.2}}, []string{"interface"})
	m.platformCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sentinel_platform_calls_total",
		Help: "Calls to the verification platform by interface and outcome (ok, not_found, error, bad_response, unreachable)."},
		[]string{"interface", "outcome"})
	m.platformOnline = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sentinel_platform_online",
		Help: "1 when the last platform call got an answer."})
	m.readerOnline = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sentinel_reader_online",
		Help: "1 when the credential reader is online."}, []string{"reader"})
	m.fireAlarm = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sentinel_fire_alarm_active",
		Help: "1 while the fire-alarm input is active."})
	m.selftestOK = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sentinel_selftest_ok",
		Help: "1 when the last selftest passed."})
	m.controlUp = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sentinel_control_connected",
		Help: "1 while the control connection (status and commands) is up."})
	m.commandsSubscribed = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sentinel_commands_subscribed",
		Help: "1 while the control connection is subscribed to the command topics (the broker granted the subscription)."})
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sentinel_commands_total",
		Help: "Remote commands by name and result (ok, failed, unsupported, refused:<why>)."}, []string{"name", "result"})
	m.statusPublished = prometheus.NewCounter(prometheus.CounterOpts{Name: "sentinel_status_published_total",
		Help: "Status messages published."})
	m.screenClients = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sentinel_screen_clients",
		Help: "Browsers connected to the verdict screen's event stream."})
	m.screenDropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sentinel_screen_disconnects_total",
		Help: "Screen clients gone, by why: closed (the client left), slow (it could not keep up)."}, []string{"why"})
	for _, c := range []prometheus.Collector{m.passages, m.lost, m.gates, m.decision, m.platformLatency, m.platformCalls,
		m.platformOnline, m.readerOnline, m.fireAlarm, m.selftestOK, m.controlUp, m.commandsSubscribed, m.commands, m.statusPublished,
		m.screenClients, m.screenDropped} {
		f(c)
	}
	bi := buildinfo.Get()
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sentinel_build_info", Help: "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "commit": bi.Commit}}, func() float64 { return 1 }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sentinel_clock_synced", Help: "1 when the wall clock is synchronised (records say clock=synced)."},
		func() float64 { return b2f(o.opt.Clock() == clock.Synced) }))
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.unitCollectors(o)
	return m
}

// passage counts one passage.
// The passage itself is counted last: a scrape that sees it sees its decision and calls too.
func (m *metrics) passage(out pipeline.Outcome) {
	r := out.Record
	m.decision.Observe(float64(r.DecisionMS) / 1000)
	m.platformCall(out.Calls, r.Reason)
	m.gates.WithLabelValues(r.Gate).Inc()
	if !out.Committed {
		m.lost.Inc()
	}
	m.passages.WithLabelValues(r.Verdict, r.Reason, r.Mode).Inc()
}

// callOutcome names a platform call's outcome by its HTTP status (0: no answer).
func callOutcome(status int) string {
	switch status {
	case 0:
		return "unreachable"
	case 404:
		return "not_found"
	case 200:
		return "ok"
	}
	return "error"
}

// platformCall counts the platform calls of a decision (a retry included).
func (m *metrics) platformCall(calls []verify.Call, reason string) {
	for i, c := range calls {
		outcome := callOutcome(c.Status)
		if outcome == "ok" && i == len(calls)-1 && reason == verify.ReasonBadResponse {
			outcome = "bad_response"
		}
		iface := c.Interface
		if iface == "" {
			iface = "unknown"
		}
		m.platformCallDone(iface, outcome, c.Latency)
	}
}

// platformCallDone counts one platform call and its latency.
func (m *metrics) platformCallDone(iface, outcome string, latency time.Duration) {
	m.platformCalls.WithLabelValues(iface, outcome).Inc()
	if latency > 0 {
		m.platformLatency.WithLabelValues(iface).Observe(latency.Seconds())
	}
}

// unitCollectors add what is read from the other parts at scrape time: queue, uplink, lane,
// audit, events and pipeline.
func (m *metrics) unitCollectors(o *Ops) {
	stats := func() (pending, age float64) {
		s, err := o.queueStats(context.Background()) // one query serves both gauges
		if err != nil {
			return -1, -1
		}
		return float64(s.Pending), s.OldestPendingAge().Seconds()
	}
	count := func(f func() int64) func() float64 {
		return func() float64 {
			if f == nil {
				return 0
			}
			return float64(f())
		}
	}
	eventCount := func(pick func(events.Stats) int64) func() float64 {
		return func() float64 {
			if o.opt.Counters.Events == nil {
				return 0
			}
			return float64(pick(o.opt.Counters.Events()))
		}
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sentinel_queue_pending", Help: "Records in the outbox not yet acknowledged by the broker (-1: the outbox cannot be read)."},
			func() float64 { p, _ := stats(); return p }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sentinel_queue_oldest_pending_age_seconds", Help: "Age of the oldest pending record; 0 when none."},
			func() float64 { _, a := stats(); return a }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sentinel_uplink_connected", Help: "1 while the record uplink has a broker connection."},
			func() float64 { return b2f(o.opt.Uplink.Connected()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sentinel_gate_mode", Help: "Remote gate mode: 0 normal, 1 always_open, 2 locked."},
			func() float64 {
				switch o.opt.Lane.State().GateMode {
				case record.GateModeAlwaysOpen:
					return 1
				case record.GateModeLocked:
					return 2
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sentinel_audit_lost_total", Help: "Audit rows of platform calls lost: the audit queue was full or stopped, or the outbox refused them."},
			count(o.opt.Counters.AuditLost)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sentinel_passages_pipeline_total", Help: "Passages handled by the pipeline since start (includes lost ones)."},
			count(o.opt.Counters.Passages)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sentinel_events_stored_total", Help: "Event records stored in the outbox by the daemon's recorder."},
			eventCount(func(s events.Stats) int64 { return s.Stored })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sentinel_events_lost_total", Help: "Event records lost: the recorder was full or stopped, or the outbox refused them."},
			eventCount(func(s events.Stats) int64 { return s.Lost })),
	)
}

// listenLoopback opens a TCP listener for key's address; a non-loopback address must be
// allowed by config (validated) and is logged.
func (o *Ops) listenLoopback(key, addr string, allowRemote bool) (net.Listener, error) {
	if !config.IsLoopbackListen(addr) && !allowRemote {
		return nil, fmt.Errorf("%s: %q is not a loopback address", key, addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if !config.IsLoopbackListen(addr) {
		o.opt.Log.Warn("listening beyond loopback, as config allows", "key", key, "addr", l.Addr().String())
	}
	return l, nil
}

// maxHTTPConns bounds the connections a screen or metrics listener serves at once (more wait
// in the kernel's backlog): a local process opening thousands must not take the daemon's
// file descriptors (its status file and database need them).
const maxHTTPConns = 64

// serveHTTP serves h on l until ctx ends.
func serveHTTP(ctx context.Context, l net.Listener, h http.Handler) error {
	l = netutil.LimitListener(l, maxHTTPConns)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
		<-errc
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// serveLoopback binds key's address and serves h until ctx ends. A bind failure (the port is
// taken) does not stop the lane: it is logged and retried every bindRetry. onBound, when set,
// is told the listener before serving.
func (o *Ops) serveLoopback(ctx context.Context, key, addr string, allowRemote bool, h http.Handler, onBound func(net.Listener)) error {
	failed := false
	for {
		l, err := o.listenLoopback(key, addr, allowRemote)
		if err == nil {
			if failed {
				o.opt.Log.Info("listening at last", "key", key, "addr", l.Addr().String())
			} else {
				o.opt.Log.Info("listening", "key", key, "addr", l.Addr().String())
			}
			if onBound != nil {
				onBound(l)
			}
			return serveHTTP(ctx, l, h)
		}
		if !failed {
			o.opt.Log.Error("cannot listen; the lane goes on without it, retrying", "key", key, "err", err, "retry", o.t.BindRetry)
			failed = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.t.BindRetry):
		}
	}
}

// serveMetrics serves the metrics on metrics.listen until ctx ends; off does nothing.
func (o *Ops) serveMetrics(ctx context.Context) {
	c := o.opt.Cfg.Metrics
	if c.Listen == config.ListenOff {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.metrics.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	if err := o.serveLoopback(ctx, "metrics.listen", c.Listen, c.AllowRemote, mux, nil); err != nil {
		o.opt.Log.Error("metrics stopped", "err", err)
	}
}
