package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/drivers/qrscan"
	"github.com/sentinel-edge/sentinel/drivers/relay"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// ErrStart wraps every start-up failure; the message names the config key to fix.
var ErrStart = errors.New("agent: cannot start")

// Options are the daemon's process-level settings.
type Options struct {
	Log *slog.Logger
	// Console, when set, gets one line per passage.
	Console io.Writer
	// FlushTimeout bounds how long shutdown waits for the uplink to deliver what is pending.
	FlushTimeout time.Duration
	// Ready, when set, is called once the pipeline is up.
	Ready func()
	// ConfigPath is the file Cfg came from; the reload command reads it again.
	ConfigPath string
}

// Topic returns the topic of a record kind for this unit: <prefix>/<venue>/<device>/<kind>.
func Topic(c *config.Config, kind string) string {
	return c.Uplink.TopicPrefix + "/" + c.Device.Venue + "/" + c.Device.ID + "/" + kind
}

// Daemon is the running agent: the core every unit has (relay, outbox, verifier, pipeline,
// uplink) and the optional parts registered with RegisterPart.
type Daemon struct {
	Cfg *config.Config
	Log *slog.Logger
	Opt Options

	Relay    Relay // nil for a unit without a barrier
	Outbox   *queue.Outbox
	Client   *verify.Client
	Verifier *verify.Verifier
	Pipeline *Pipeline
	// Sources are the credential readers; parts may add theirs in Setup.
	Sources []Source
	// UplinkConfig may be amended by parts in Setup, before the uplink starts.
	UplinkConfig queue.UplinkConfig
	Uplink       *queue.Uplink

	auditor atomic.Pointer[auditor] // the running audit part (audit.go); nil otherwise

	opsOnce  sync.Once
	opsState *opsState // status, screen, metrics and commands; see ops()

	observers  []func(Passage)
	deliveries []func(queue.Entry)
	auditLost  atomic.Int64 // audit rows that could not be stored (audit.go)
}

// Observe registers f to be told about every passage, after the barrier moved. Call it from
// a part's Setup.
func (d *Daemon) Observe(f func(Passage)) { d.observers = append(d.observers, f) }

// OnDelivered registers f to be told about every entry the broker acknowledged. Call it from
// a part's Setup.
func (d *Daemon) OnDelivered(f func(queue.Entry)) { d.deliveries = append(d.deliveries, f) }

// Part is an optional piece of the daemon (a screen, metrics, status, inputs...), registered
// by its file's init. Setup runs after the core is built and before anything runs; it returns
// what runs until ctx ends (nil when nothing runs), or an error that stops start-up.
type Part struct {
	Name  string
	Order int // Setup order, low first
	Setup func(ctx context.Context, d *Daemon) (run func(ctx context.Context) error, err error)
}

var (
	partsMu sync.Mutex
	parts   []Part
)

// RegisterPart adds a part; a duplicate name panics (registration is a programming error).
func RegisterPart(p Part) {
	partsMu.Lock()
	defer partsMu.Unlock()
	for _, q := range parts {
		if q.Name == p.Name {
			panic("agent: part registered twice: " + p.Name)
		}
	}
	parts = append(parts, p)
}

func registeredParts() []Part {
	partsMu.Lock()
	defer partsMu.Unlock()
	ps := append([]Part(nil), parts...)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Order < ps[j].Order })
	return ps
}

// Run runs the daemon until ctx ends. It returns nil on a clean shutdown and an error that
// names the failing part when start-up fails.
func Run(ctx context.Context, cfg *config.Config, opt Options) error {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.FlushTimeout == 0 {
		opt.FlushTimeout = 2 * time.Second
	}
	d := &Daemon{Cfg: cfg, Log: opt.Log, Opt: opt}
	return d.run(ctx)
}

func (d *Daemon) run(ctx context.Context) (err error) {
	cfg, log := d.Cfg, d.Log

	// 1. Outputs to their safe state first, before any network or disk, even on a unit that
	// goes no further: a unit with a placeholder identity or default secrets does nothing else
	// (provisioned.go).
	rel, err := openRelay(cfg)
	if perr := refuseUnprovisioned(cfg); perr != nil {
		if rel != nil {
			_ = rel.Halt()
		}
		return fmt.Errorf("%w: %w", ErrStart, perr)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStart, err)
	}
	if rel != nil {
		d.Relay = rel
		defer func() {
			if herr := rel.Halt(); herr != nil {
				log.Error("relay halt failed", "relay", rel.String(), "err", herr)
			}
		}()
		log.Info("barrier relay de-energised", "relay", rel.String())
	}

	// 2. The outbox: every passage is committed here before the barrier moves.
	d.Outbox, err = queue.Open(cfg.Queue.Path, queue.Options{Synchronous: cfg.Queue.Synchronous, Logger: log.With("part", "queue")})
	if err != nil {
		return fmt.Errorf("%w: queue.path: %w", ErrStart, err)
	}
	defer func() {
		if cerr := d.Outbox.Close(); cerr != nil {
			log.Error("closing the queue", "path", cfg.Queue.Path, "err", cerr)
		}
	}()

	// 3. The QR scanner: its port must open now, so a wrong path fails fast with its key.
	if q := cfg.Scanners.QR; q != nil && q.Driver != "evdev" { // evdev: devices.go
		scanner := qrscan.NewSerial(qrscan.SerialConfig{Port: q.Port, Baud: q.Baud, MaxLength: q.MaxLength, DuplicateWindow: q.DuplicateWindow}, log)
		if err := scanner.Open(); err != nil {
			return fmt.Errorf("%w: scanners.qr.port: %w", ErrStart, err)
		}
		d.Sources = append(d.Sources, QRSource{scanner})
	}

	// 4. The verifier and the pipeline.
	// (platform.go: mapping, signing, offline policy, breaker; audit.go audits every call.)
	if d.Client, err = newPlatformClient(cfg, d.auditPing); err != nil {
		return fmt.Errorf("%w: %w", ErrStart, err)
	}
	maxTok := 0
	if cfg.Scanners.QR != nil {
		maxTok = cfg.Scanners.QR.MaxLength
	}
	d.Verifier = verify.NewVerifier(d.Client, verifierOptions(cfg, maxTok))
	d.Pipeline = &Pipeline{
		Device: cfg.Device.ID, Venue: cfg.Device.Venue,
		Topic:   Topic(cfg, StreamPassage),
		Decider: d.Verifier, Outbox: d.Outbox, Pulse: cfg.Barrier.Pulse,
		Log: log.With("part", "pipeline"),
	}
	if rel != nil {
		d.Pipeline.Relay = rel
	}
	if opt := d.Opt; opt.Console != nil {
		console := &Console{W: opt.Console, Wait: 3 * time.Second}
		d.Observe(console.Passage)
		d.OnDelivered(func(e queue.Entry) {
			if e.Stream == StreamPassage {
				console.Delivered(e.ID)
			}
		})
	}
	d.UplinkConfig = queue.UplinkConfig{
		Brokers:  cfg.Uplink.Brokers,
		ClientID: cfg.Uplink.ClientID,
		Logger:   log.With("part", "uplink"),
	}

	// 5. Optional parts: each may add sources, observers and uplink settings.
	partCtx, partCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer partCancel()
	var partWG sync.WaitGroup
	defer func() { partCancel(); partWG.Wait() }()
	for _, p := range registeredParts() {
		run, perr := p.Setup(partCtx, d)
		if perr != nil {
			return fmt.Errorf("%w: %s: %w", ErrStart, p.Name, perr)
		}
		if run == nil {
			continue
		}
		partWG.Add(1)
		go func() {
			defer partWG.Done()
			if rerr := run(partCtx); rerr != nil && partCtx.Err() == nil {
				log.Error("part stopped", "part", p.Name, "err", rerr)
			}
		}()
	}
	if len(d.Sources) == 0 {
		return fmt.Errorf("%w: scanners: no credential reader configured", ErrStart)
	}
	observers, deliveries := d.observers, d.deliveries
	d.Pipeline.Observe = func(p Passage) {
		for _, f := range observers {
			f(p)
		}
	}
	d.UplinkConfig.OnDelivered = func(e queue.Entry) {
		for _, f := range deliveries {
			f(e)
		}
	}

	// 6. The uplink, on its own context so that it can flush after the readers stopped.
	upCtx, upCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer upCancel()
	d.Uplink = queue.NewUplink(d.Outbox, d.UplinkConfig)
	var upWG sync.WaitGroup
	upWG.Add(1)
	go func() {
		defer upWG.Done()
		if err := d.Uplink.Run(upCtx); err != nil {
			log.Error("uplink stopped", "err", err)
		}
	}()

	log.Info("pipeline up", "device", cfg.Device.ID, "venue", cfg.Device.Venue, "style", cfg.Device.Style,
		"sources", len(d.Sources), "platform", cfg.Platform.URL, "policy", d.Verifier.PolicyHash(), "queue", filepath.Clean(cfg.Queue.Path))
	if d.Opt.Ready != nil {
		d.Opt.Ready()
	}
	runErr := d.Pipeline.Run(ctx, d.Sources...)

	// Ordered shutdown: the readers stopped and the decision in flight finished (Run
	// returned); halt the relay, stop the parts, give the uplink a moment to deliver what is
	// pending; the deferred closes then close the database.
	if rel != nil {
		_ = rel.Halt()
	}
	partCancel()
	partWG.Wait()
	flushUplink(d.Outbox, d.Uplink, d.Opt.FlushTimeout)
	upCancel()
	upWG.Wait()
	c := d.Pipeline.Counters()
	log.Info("stopped", "passages", c.Passages, "lost", c.Lost)
	return runErr
}

// flushUplink waits until nothing is pending or the deadline passes.
func flushUplink(ob *queue.Outbox, up *queue.Uplink, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && up.Connected() {
		st, err := ob.Stats(context.Background())
		if err != nil || st.Pending == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// openRelay builds the barrier relay the config asks for; nil when the unit has none.
func openRelay(cfg *config.Config) (Relay, error) {
	opt := relay.Options{ActiveLow: cfg.Barrier.ActiveLow, MaxPulse: cfg.Barrier.MaxPulse}
	switch cfg.Barrier.Driver {
	case "gpio":
		pin, err := lookupRelayPin(cfg.Barrier.Pin)
		if err != nil {
			return nil, fmt.Errorf("barrier.pin: %w", err)
		}
		r, err := relay.New(pin, opt)
		if err != nil {
			return nil, fmt.Errorf("barrier.pin: %w", err)
		}
		return r, nil
	case "fake":
		// Simulation only, chosen explicitly in config: the real relay logic on an in-memory
		// line.
		r, err := relay.New(&gpiotest.Pin{N: "FAKE-BARRIER"}, opt)
		if err != nil {
			return nil, fmt.Errorf("barrier: %w", err)
		}
		return r, nil
	default:
		return nil, nil
	}
}
