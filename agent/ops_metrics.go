package agent

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

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/internal/buildinfo"
	"github.com/sentinel-edge/sentinel/verify"
)

// opsMetrics are the daemon's Prometheus metrics (docs/metrics.md). Each daemon has its own
// registry, so tests can run several.
type opsMetrics struct {
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

func newOpsMetrics() *opsMetrics {
	m := &opsMetrics{reg: prometheus.NewRegistry()}
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
		func() float64 { return b2f(clockState() == clock.Synced) }))
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// passage counts one passage.
func (m *opsMetrics) passage(p Passage) {
	r := p.Record
	m.passages.WithLabelValues(r.Verdict, r.Reason, r.Mode).Inc()
	m.gates.WithLabelValues(r.Gate).Inc()
	if !p.Committed {
		m.lost.Inc()
	}
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
func (m *opsMetrics) platformCall(dec verify.Decision) {
	calls := dec.Calls()
	for i, c := range calls {
		outcome := callOutcome(c.Status)
		if outcome == "ok" && i == len(calls)-1 && dec.Reason == verify.ReasonBadResponse {
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
func (m *opsMetrics) platformCallDone(iface, outcome string, latency time.Duration) {
	m.platformCalls.WithLabelValues(iface, outcome).Inc()
	if latency > 0 {
		m.platformLatency.WithLabelValues(iface).Observe(latency.Seconds())
	}
}

// eventCollectors adds the event recorder's counters.
func (m *opsMetrics) eventCollectors(r *eventRecorder) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sentinel_events_stored_total", Help: "Event records stored in the outbox by the daemon's recorder."},
			func() float64 { return float64(r.stored.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sentinel_events_lost_total", Help: "Event records lost: the recorder was full or stopped, or the outbox refused them."},
			func() float64 { return float64(r.lostTotal.Load()) }),
	)
}

// daemonCollectors adds what is read from the daemon at scrape time: queue and uplink.
func (m *opsMetrics) daemonCollectors(st *opsState) {
	d := st.d
	stats := func() (pending, age float64) {
		if d.Outbox == nil {
			return 0, 0
		}
		s, err := st.queueStats(context.Background()) // one query serves both gauges
		if err != nil {
			return -1, -1
		}
		return float64(s.Pending), s.OldestPendingAge().Seconds()
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sentinel_queue_pending", Help: "Records in the outbox not yet acknowledged by the broker (-1: the outbox cannot be read)."},
			func() float64 { p, _ := stats(); return p }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sentinel_queue_oldest_pending_age_seconds", Help: "Age of the oldest pending record; 0 when none."},
			func() float64 { _, a := stats(); return a }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sentinel_uplink_connected", Help: "1 while the record uplink has a broker connection."},
			func() float64 { up := st.uplink(); return b2f(up != nil && up.Connected()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sentinel_gate_mode", Help: "Remote gate mode: 0 normal, 1 always_open, 2 locked."},
			func() float64 {
				switch st.mode.Mode() {
				case ModeAlwaysOpen:
					return 1
				case ModeLocked:
					return 2
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sentinel_audit_lost_total", Help: "Audit rows of platform calls lost: the audit queue was full or stopped, or the outbox refused them."},
			func() float64 { return float64(d.AuditLost()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sentinel_passages_pipeline_total", Help: "Passages handled by the pipeline since start (includes lost ones)."},
			func() float64 {
				if d.Pipeline == nil {
					return 0
				}
				return float64(d.Pipeline.Counters().Passages)
			}),
	)
}

// listenLoopback opens a TCP listener for key's address; a non-loopback address must be
// allowed by config (validated) and is logged.
func listenLoopback(d *Daemon, key, addr string, allowRemote bool) (net.Listener, error) {
	if !config.IsLoopbackListen(addr) && !allowRemote {
		return nil, fmt.Errorf("%s: %q is not a loopback address", key, addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if !config.IsLoopbackListen(addr) {
		d.Log.Warn("listening beyond loopback, as config allows", "key", key, "addr", l.Addr().String())
	}
	return l, nil
}

// serveHTTP serves h on l until ctx ends.
func serveHTTP(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
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

// bindRetry is how often a screen or metrics listener that could not bind tries again.
var bindRetry = 5 * time.Second

// serveLoopback binds key's address and serves h until ctx ends. A bind failure (the port is
// taken) does not stop the lane: it is logged and retried every bindRetry. onBound, when set,
// is told the listener before serving.
func serveLoopback(ctx context.Context, d *Daemon, key, addr string, allowRemote bool, h http.Handler, onBound func(net.Listener)) error {
	failed := false
	for {
		l, err := listenLoopback(d, key, addr, allowRemote)
		if err == nil {
			if failed {
				d.Log.Info("listening at last", "key", key, "addr", l.Addr().String())
			} else {
				d.Log.Info("listening", "key", key, "addr", l.Addr().String())
			}
			if onBound != nil {
				onBound(l)
			}
			return serveHTTP(ctx, l, h)
		}
		if !failed {
			d.Log.Error("cannot listen; the lane goes on without it, retrying", "key", key, "err", err, "retry", bindRetry)
			failed = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(bindRetry):
		}
	}
}

func init() {
	RegisterPart(Part{Name: "metrics", Order: 51, Setup: setupMetrics})
}

func setupMetrics(_ context.Context, d *Daemon) (func(context.Context) error, error) {
	c := d.Cfg.Metrics
	if c.Listen == config.ListenOff {
		return nil, nil
	}
	st := d.ops()
	st.metrics.daemonCollectors(st)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(st.metrics.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	return func(ctx context.Context) error {
		return serveLoopback(ctx, d, "metrics.listen", c.Listen, c.AllowRemote, mux, nil)
	}, nil
}
