package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/sentinel-edge/sentinel/agent/audit"
	"github.com/sentinel-edge/sentinel/agent/clock"
	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/events"
	"github.com/sentinel-edge/sentinel/agent/face"
	"github.com/sentinel-edge/sentinel/agent/lane"
	"github.com/sentinel-edge/sentinel/agent/open"
	"github.com/sentinel-edge/sentinel/agent/ops"
	"github.com/sentinel-edge/sentinel/agent/pipeline"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/selftest"
	"github.com/sentinel-edge/sentinel/agent/statefile"
	"github.com/sentinel-edge/sentinel/internal/chain"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// assemble builds the unit cfg describes, top to bottom in the order its parts start; they
// stop in reverse order (unit.run). Nothing runs yet, except that the barrier relay is driven
// to its safe state first. Every error names the config key to fix; what was opened before it
// is closed again.
func assemble(cfg *config.Config, opt Options) (_ *unit, err error) {
	log := opt.Log
	u := &unit{log: log}
	defer func() {
		if err != nil {
			u.close() // what was opened so far, in reverse
			err = fmt.Errorf("%w: %w", ErrStart, err)
		}
	}()
	id := open.Unit(cfg)

	// 1. The barrier relay, de-energised before any network or disk, even on a unit that goes
	// no further: an unprovisioned unit (placeholder identity, default secrets) does nothing
	// else, and its template pins may be wrong for the hardware.
	rel, relErr := open.Relay(cfg.Barrier)
	var barrier lane.Relay // nil without a barrier (a nil *relay.GPIO would not be)
	if rel != nil {
		barrier = rel
		u.onClose(func() {
			if herr := rel.Halt(); herr != nil {
				log.Error("relay halt failed", "relay", rel.String(), "err", herr)
			}
		})
	}
	if perr := refuseUnprovisioned(cfg); perr != nil {
		return nil, perr
	}
	if relErr != nil {
		return nil, relErr
	}
	if rel != nil {
		log.Info("barrier relay de-energised", "relay", rel.String())
	}

	// 2. The outbox: every record is committed here before anything acts on it, chained with
	// the unit's key (docs/records.md).
	cu, created, err := chain.OpenUnit(cfg.Device.Venue, cfg.Device.ID, cfg.Records.ChainHash, cfg.Records.ChainKeyFile, cfg.Records.CreateChainKey())
	if err != nil {
		return nil, fmt.Errorf("records.chain_key_file: %w", err)
	}
	log.Info("records: chained", "chain_hash", cfg.Records.ChainHash, "chain_key", cu.PublicKey(), "key_file", cfg.Records.ChainKeyFile, "key_created", created)
	ob, err := queue.Open(cfg.Queue.Path, queue.Options{Synchronous: cfg.Queue.Synchronous, Logger: log.With("part", "queue"), Chain: cu})
	if err != nil {
		return nil, fmt.Errorf("queue.path: %w", err)
	}
	u.onClose(func() {
		if cerr := ob.Close(); cerr != nil {
			log.Error("closing the queue", "path", cfg.Queue.Path, "err", cerr)
		}
	})
	if err := ob.SetCapacity(open.Capacity(cfg)); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	u.add("queue watch", func(ctx context.Context) error { return watchLosses(ctx, ob, time.Minute, log.With("part", "queue")) })

	// 3. The uplink: delivers what is pending, from this run or an earlier one. It stops last,
	// after a moment to deliver what the other parts stored on their way out.
	uc, err := open.Uplink(cfg, log.With("part", "uplink"))
	if err != nil {
		return nil, err
	}
	var console *Console
	if opt.Console != nil {
		console = &Console{W: opt.Console, Wait: 3 * time.Second}
		uc.OnDelivered = func(e queue.Entry) {
			if e.Stream == record.StreamPassage {
				console.Delivered(e.ID)
			}
		}
	}
	up := queue.NewUplink(ob, uc)
	u.addStop("uplink", up.Run, func() { flushUplink(ob, up, opt.FlushTimeout) })

	// 4. The event recorder: the one path to stream event, for the lane, the readers and the
	// commands. It stops after all of them.
	rec := events.New(ob, events.Options{Unit: id, Log: log.With("part", "events")})
	u.add("events", rec.Run)

	// 5. The platform client and the venue's policy, behind the reload's swap point
	// (decisions): the pipeline decides, the audit re-checks and ops pings through it. The
	// audit (next) gets the client's pings.
	var auditor *audit.Auditor
	onPing := func(c verify.Call) { auditor.Ping(c) }
	first, err := newDecider(cfg, onPing)
	if err != nil {
		return nil, err
	}
	decs := &decisions{}
	decs.swap(first)
	rl := &reloader{path: opt.ConfigPath, log: log.With("part", "reload"), level: opt.LogLevel, decs: decs, onPing: onPing}
	rl.cfg.Store(cfg)

	// 6. The audit: a row per platform call; the re-checks of flagged passages (those
	// allow_and_flag admitted: with another offline policy there are none, until a reload
	// changes it); at start, the alerts of those a previous run left unsettled.
	auditor = audit.New(audit.Options{Unit: id, Store: ob, Scan: ob.ScanEntries, ProbeInterval: cfg.Platform.ProbeInterval,
		Recheck: decs, Log: log.With("part", "audit")})
	u.add("audit", auditor.Run)

	// 7. The lane: the barrier, the inputs wired to it, the gate mode. Its changes reach the
	// status through ops (next), which are set up before anything runs.
	var changed func()
	ins, err := open.Inputs(cfg, log.With("part", "lane"))
	if err != nil {
		return nil, err
	}
	laneInputs := make([]lane.Input, 0, len(ins))
	for _, in := range ins {
		laneInputs = append(laneInputs, in)
		u.onClose(func() { _ = in.Halt() })
	}
	ln := lane.New(lane.Options{
		Relay: barrier, Pulse: cfg.Barrier.Pulse, MaxPulse: cfg.Barrier.MaxPulse, HoldUntilClosed: cfg.Barrier.Mode == "hold",
		DoorHeldOpen: doorHeldOpen(cfg), ModeFile: statefile.Path(cfg.Queue.Path, lane.ModeFileName),
		Events: rec, OnChange: func() { changed() }, Log: log.With("part", "lane"),
	})
	u.add("lane", func(ctx context.Context) error { return ln.Run(ctx, laneInputs) })

	// 8. Operations: the retained status and the commands on a control connection of their
	// own, the verdict screen, the metrics; the verifications the status counts for docked
	// (the stored selftest and docking-check, the selftest command's, the daemon's own
	// platform check: they claim no device, use the config and the platform client in force,
	// and every call they make is audited).
	var pl *pipeline.Pipeline
	var o *ops.Ops
	o, err = ops.New(ops.Options{
		Cfg: cfg, Lane: ln, Queue: ob, Uplink: up, Control: uc, Pinger: decs, Events: rec,
		Selftest: func(ctx context.Context) record.SelftestState {
			return selftest.Live(ctx, rl.current(), selftest.Options{Platform: decs.now().client, Audit: auditor.Checked},
				selftest.Held{Readers: o.Readers(), Relay: ln.Barrier()})
		},
		PlatformCheck: func(ctx context.Context) record.SelftestState {
			return selftest.PlatformCheck(ctx, rl.current(), selftest.Options{Platform: decs.now().client, Audit: auditor.Checked})
		},
		Verifications: selftest.Store{QueuePath: cfg.Queue.Path},
		Reload:        rl.reloadFor(opt.ConfigPath),
		Counters:      ops.Counters{Passages: func() int64 { return pl.Counters().Passages }, AuditLost: auditor.Lost, Events: rec.Stats},
		Log:           log.With("part", "ops"),
		Head:          cu.StatusHead(ob, func(err error) { log.Warn("status: sent without its signed head", "err", err) }),
	})
	if err != nil {
		return nil, err
	}
	rl.ops = o
	u.reload = rl.reload
	changed = o.Changed
	u.add("ops", o.Run)

	// 9. The credential readers: each must open now, so that a wrong port fails start-up with
	// its key. The pipeline runs them.
	sources, err := readers(cfg, log, o)
	if err != nil {
		return nil, err
	}

	// 10. The decision chain: a card read first gets the snapshot its face check needs (when
	// camera.verify asks for one), then the platform and the venue's policy decide.
	steps, err := faceSteps(u, cfg, decs.PolicyHash(), o, log.With("part", "face"))
	if err != nil {
		return nil, err
	}

	// 11. Sealing: with the platform's key, the full identity (and a kept face) is sealed into
	// each record; without, records carry masked fields only.
	var sealer pipeline.Sealer
	if s, err := open.Sealer(cfg, log.With("part", "privacy")); err != nil {
		return nil, err
	} else if s != nil {
		sealer = s
		log.Info("privacy: sealing subjects to the platform key", "key_sha256", s.Fingerprint(), "hash_key", cfg.Privacy.HashKeyFile)
	} else {
		log.Info("privacy: no platform key (privacy.platform_key_file); records carry masked fields only")
	}

	// 12. The pipeline: prepare, decide, plan, record, store, open, audit, observe.
	observers := []pipeline.Observer{o}
	if console != nil {
		observers = append(observers, pipeline.ObserverFunc(console.Passage))
	}
	pl = pipeline.New(pipeline.Options{
		Unit: id, Steps: steps, Decider: decs, Store: ob, Barrier: ln, Sealer: sealer,
		Auditor: auditor, Observers: observers, Log: log.With("part", "pipeline"), LivenessTick: opt.LivenessTick,
	})

	// 13. The systemd watchdog: READY=1 once the pipeline is up, then WATCHDOG=1 only while it
	// turns. Without NOTIFY_SOCKET, nothing.
	wd, err := newWatchdog(pl.LastActive, opt.LivenessTick, log.With("part", "watchdog"))
	if err != nil {
		return nil, err
	}
	if wd != nil {
		u.add("watchdog", wd.run)
	}

	// Before the first passage: the gate mode written before the last stop is in force (a
	// restored always_open holds the barrier once start-up completed), and the audit's start-up
	// scan has its snapshot, so that nothing of this run is taken for a previous run's.
	ln.RestoreGateMode()
	u.ready = func() {
		<-auditor.Started()
		ln.AssertGateMode()
		log.Info("pipeline up", "device", cfg.Device.ID, "venue", cfg.Device.Venue, "style", cfg.Device.Style,
			"sources", len(sources), "platform", cfg.Platform.URL, "policy", decs.PolicyHash(), "queue", filepath.Clean(cfg.Queue.Path))
		if opt.Ready != nil {
			opt.Ready()
		}
		if wd != nil {
			wd.up()
		}
	}
	u.main = func(ctx context.Context) error { return pl.Run(ctx, sources...) }
	// Right after the readers stopped and the decision in flight finished: the barrier closes
	// (the gate mode's hold ends without changing the mode: a restart restores it).
	u.done = func() {
		if err := ln.Stop(); err != nil {
			log.Warn("gate mode: releasing the hold at shutdown", "err", err)
		}
		if rel != nil {
			_ = rel.Halt()
		}
		c := pl.Counters()
		log.Info("stopping", "passages", c.Passages, "lost", c.Lost)
	}
	return u, nil
}

// readers opens the credential readers the config names, each reporting its coming and going
// to ops (status, screen, metrics, events).
func readers(cfg *config.Config, log *slog.Logger, o *ops.Ops) ([]pipeline.Source, error) {
	var sources []pipeline.Source
	qr, err := open.QRScanner(cfg, log.With("part", "qrscan"), o.ReaderState("qr"))
	if err != nil {
		return nil, err
	}
	if qr != nil {
		o.ReaderUp("qr") // its port opened
		sources = append(sources, qr)
	}
	idc, err := open.IDCardReader(cfg, log.With("part", "idcard"), o.ReaderState("idcard"))
	if err != nil {
		return nil, err
	}
	if idc != nil {
		sources = append(sources, idc)
	}
	if len(sources) == 0 {
		return nil, errors.New("scanners: no credential reader configured")
	}
	return sources, nil
}

// faceSteps builds the camera and, when camera.verify asks for it, the face check of card
// reads.
func faceSteps(u *unit, cfg *config.Config, policyHash string, o *ops.Ops, log *slog.Logger) ([]pipeline.Step, error) {
	cam, err := open.Camera(cfg)
	if err != nil || cam == nil {
		return nil, err
	}
	u.onClose(func() { _ = cam.Halt() })
	when := cfg.FaceVerify()
	if when == config.CameraVerifyNever {
		log.Info("camera ready; camera.verify is never: no snapshot is taken", "camera", cam.String())
		return nil, nil
	}
	log.Info("face verification on: each ID-card passage is decided by a snapshot and the card's ID number",
		"camera", cam.String(), "camera_verify", when, "keep", cfg.Camera.Keep)
	return []pipeline.Step{face.NewCardCheck(face.CardCheckOptions{
		Camera: cam, Required: when == config.CameraVerifyRequired, Budget: cfg.Camera.Timeout,
		PolicyHash: policyHash, OnState: o.ReaderState("camera"), Log: log,
	})}, nil
}

// doorHeldOpen is inputs.door_sensor.held_open, 0 without a door sensor.
func doorHeldOpen(cfg *config.Config) time.Duration {
	if d := cfg.Inputs.DoorSensor; d != nil {
		return d.HeldOpen
	}
	return 0
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

// watchLosses logs new losses (dropped, rejected, failed writes) once per interval, so that a
// loss shows in the log even when no passage line is read.
func watchLosses(ctx context.Context, ob *queue.Outbox, every time.Duration, log *slog.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		st, err := ob.Stats(ctx)
		if errors.Is(err, queue.ErrClosed) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			log.Warn("queue: stats", "err", err)
			continue
		}
		if st.Dropped > last {
			log.Error("queue: records lost", "dropped", st.Dropped, "missing", st.Missing, "dropped_oldest", st.DroppedOldest,
				"rejected_full", st.RejectedFull, "failed_writes", st.FailedWrites, "pending", st.Pending)
			last = st.Dropped
		}
	}
}

// decisions is the pipeline's decider, and the one swap point of a reload: the pipeline
// decides, the audit re-checks and ops pings through it, and a reload that changes the
// policy or the platform replaces the verifier and its platform client together, with one
// atomic store. A decision in flight finishes with the verifier it began with; no part is
// changed behind its back. The face check's own denials (no snapshot) keep the policy hash
// of start.
type decisions struct{ cur atomic.Pointer[decider] }

// decider is one verifier and the platform client it asks, as built from one config, with
// what the reload compares beside the config's keys: the contents of the files it read.
type decider struct {
	verifier    *verify.Verifier
	client      *verify.Client
	secretSum   [sha256.Size]byte // of platform.secret_file's contents (zero without)
	mappingHash string
}

// newDecider builds the platform client and the verifier of cfg (platform.*, policy.*).
func newDecider(cfg *config.Config, onPing func(verify.Call)) (*decider, error) {
	client, err := open.Platform(cfg, onPing, clock.Trusted)
	if err != nil {
		return nil, err
	}
	d := &decider{client: client, verifier: verify.NewVerifier(client, open.VerifierOptions(cfg, clock.Trusted))}
	if d.secretSum, d.mappingHash, err = platformFiles(cfg); err != nil {
		return nil, err
	}
	return d, nil
}

// platformFiles sums what the platform client reads from files: the secret's contents and
// the mapping's hash.
func platformFiles(cfg *config.Config) (secretSum [sha256.Size]byte, mappingHash string, err error) {
	if cfg.Platform.SecretFile != "" {
		secret, err := verify.ReadSecretFile(cfg.Platform.SecretFile)
		if err != nil {
			return secretSum, "", fmt.Errorf("platform.secret_file: %w", err)
		}
		secretSum = sha256.Sum256(secret)
		clear(secret)
	}
	m, err := verify.LoadMapping(cfg.Platform.Mapping)
	if err != nil {
		return secretSum, "", fmt.Errorf("platform.mapping: %w", err)
	}
	return secretSum, m.Hash(), nil
}

func (d *decisions) swap(n *decider) { d.cur.Store(n) }
func (d *decisions) now() *decider   { return d.cur.Load() }

// Decide is the pipeline's Decider.
func (d *decisions) Decide(ctx context.Context, cred verify.Credential, passageID string) verify.Decision {
	return d.now().verifier.Decide(ctx, cred, passageID)
}

// Recheck and PolicyHash are the audit's Verifier.
func (d *decisions) Recheck(ctx context.Context, cred verify.Credential, passageID string) verify.Decision {
	return d.now().verifier.Recheck(ctx, cred, passageID)
}

// PolicyHash is the hash of the policy in force.
func (d *decisions) PolicyHash() string { return d.now().verifier.PolicyHash() }

// Ping is ops' Pinger: the platform client in force.
func (d *decisions) Ping(ctx context.Context) (verify.Call, error) { return d.now().client.Ping(ctx) }
