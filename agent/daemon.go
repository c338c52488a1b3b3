package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/drivers/qrscan"
	"github.com/sentinel-edge/sentinel/drivers/relay"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// Errors of the daemon's start-up; each names what to fix.
var (
	ErrStart = errors.New("agent: cannot start")
)

// Options are the daemon's process-level settings.
type Options struct {
	Log *slog.Logger
	// Console, when set, gets one line per passage.
	Console io.Writer
	// FlushTimeout bounds how long shutdown waits for the uplink to deliver what is pending.
	FlushTimeout time.Duration
	// Ready, when set, is called once the pipeline is up.
	Ready func()
}

// Topic returns the topic of a record kind for this unit: <prefix>/<venue>/<device>/<kind>.
func Topic(c *config.Config, kind string) string {
	return c.Uplink.TopicPrefix + "/" + c.Device.Venue + "/" + c.Device.ID + "/" + kind
}

// Run runs the daemon until ctx ends. It returns nil on a clean shutdown and an error that
// names the failing part when start-up fails.
func Run(ctx context.Context, cfg *config.Config, opt Options) (err error) {
	log := opt.Log
	if log == nil {
		log = slog.Default()
	}
	if opt.FlushTimeout == 0 {
		opt.FlushTimeout = 2 * time.Second
	}

	// 1. Outputs to their safe state first, before any network or disk.
	rel, err := openRelay(cfg)
	if err != nil {
		return fmt.Errorf("%w: barrier: %w", ErrStart, err)
	}
	if rel != nil {
		defer func() {
			if herr := rel.Halt(); herr != nil {
				log.Error("relay halt failed", "relay", rel.String(), "err", herr)
			}
		}()
		log.Info("barrier relay de-energised", "relay", rel.String())
	}

	// 2. The outbox: every passage is committed here before the barrier moves.
	ob, err := queue.Open(cfg.Queue.Path, queue.Options{Synchronous: cfg.Queue.Synchronous, Logger: log.With("part", "queue")})
	if err != nil {
		return fmt.Errorf("%w: queue.path: %w", ErrStart, err)
	}
	defer func() {
		if cerr := ob.Close(); cerr != nil {
			log.Error("closing the queue", "path", cfg.Queue.Path, "err", cerr)
		}
	}()

	// 3. The scanner: its port must open now, so a wrong path fails fast with its key.
	scanner := qrscan.NewSerial(qrscan.SerialConfig{Port: cfg.Scanners.QR.Port, Baud: cfg.Scanners.QR.Baud, MaxLength: cfg.Scanners.QR.MaxLength}, log)
	if err := scanner.Open(); err != nil {
		return fmt.Errorf("%w: scanners.qr.port: %w", ErrStart, err)
	}

	// 4. The verifier.
	client := verify.NewClient(verify.ClientOptions{URL: cfg.Platform.URL, Device: cfg.Device.ID, Venue: cfg.Device.Venue, Timeout: cfg.Platform.Timeout})
	verifier := verify.NewVerifier(client, verify.VerifierOptions{
		Policy:      verify.Policy{HealthCodes: cfg.Policy.HealthCodes, NATMaxAge: cfg.Policy.NATMaxAge},
		MaxTokenLen: cfg.Scanners.QR.MaxLength,
	})

	var console *Console
	if opt.Console != nil {
		console = &Console{W: opt.Console, Wait: 3 * time.Second}
	}

	// 5. The uplink, on its own context so that it can flush after the readers stopped.
	upCtx, upCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer upCancel()
	up := queue.NewUplink(ob, queue.UplinkConfig{
		Brokers:  cfg.Uplink.Brokers,
		ClientID: cfg.Uplink.ClientID,
		Logger:   log.With("part", "uplink"),
		OnDelivered: func(e queue.Entry) {
			if console != nil && e.Stream == StreamPassage {
				console.Delivered(e.ID)
			}
		},
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := up.Run(upCtx); err != nil {
			log.Error("uplink stopped", "err", err)
		}
	}()

	p := &Pipeline{
		Device: cfg.Device.ID, Venue: cfg.Device.Venue,
		Topic:   Topic(cfg, StreamPassage),
		Decider: verifier, Outbox: ob, Pulse: cfg.Barrier.Pulse,
		Log: log.With("part", "pipeline"),
	}
	if rel != nil {
		p.Relay = rel
	}
	if console != nil {
		p.Observe = console.Passage
	}
	log.Info("pipeline up", "device", cfg.Device.ID, "venue", cfg.Device.Venue, "style", cfg.Device.Style,
		"scanner", scanner.String(), "platform", cfg.Platform.URL, "policy", verifier.PolicyHash(), "queue", filepath.Clean(cfg.Queue.Path))
	if opt.Ready != nil {
		opt.Ready()
	}
	runErr := p.Run(ctx, scanner)

	// Ordered shutdown: readers are stopped (Run returned), the relay is halted by its defer;
	// give the uplink a moment to deliver what is pending, then close the database.
	if rel != nil {
		_ = rel.Halt()
	}
	flushUplink(ob, up, opt.FlushTimeout)
	upCancel()
	wg.Wait()
	log.Info("stopped", "passages", p.Counters().Passages, "lost", p.Counters().Lost)
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
	opt := relay.Options{ActiveLow: cfg.Barrier.ActiveLow}
	switch cfg.Barrier.Driver {
	case "gpio":
		pin, err := relay.Lookup(cfg.Barrier.Pin)
		if err != nil {
			return nil, fmt.Errorf("barrier.pin: %w", err)
		}
		return relay.New(pin, opt)
	case "fake":
		// Simulation only, chosen explicitly in config: the real relay logic on an in-memory
		// line.
		return relay.New(&gpiotest.Pin{N: "FAKE-BARRIER"}, opt)
	default:
		return nil, nil
	}
}
