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
	"github.com/sentinel-edge/sentinel/drivers/camera"
	"github.com/sentinel-edge/sentinel/drivers/relay"
	"github.com/sentinel-edge/sentinel/internal/chain"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// assemble builds the unit cfg describes, in the order its parts start; they stop in reverse
// order (unit.run). Nothing runs yet, except that the barrier relay is driven to its safe
// state first. Every error names the config key to fix; what was opened before it is closed
// again.
func assemble(cfg *config.Config, opt Options) (_ *unit, err error) {
	b := &builder{cfg: cfg, opt: opt, log: opt.Log, u: &unit{log: opt.Log}, id: open.Unit(cfg)}
	defer func() {
		if err != nil {
			b.u.close() // what was opened so far, in reverse
			err = fmt.Errorf("%w: %w", ErrStart, err)
		}
	}()
	for _, step := range []func() error{
		b.barrierRelay,  // 1. safe first; an unprovisioned unit goes no further
		b.outbox,        // 2. every record committed, chained, before anything acts on it
		b.uplink,        // 3. delivers what is pending; stops last, after a flush
		b.eventRecorder, // 4. the one path to stream event
		b.platform,      // 5. the platform client and the policy, behind the reload's swap point
		b.audit,         // 6. a row per platform call; re-checks; start-up alerts
		b.lane,          // 7. the barrier, its inputs, the gate mode
		b.operations,    // 8. status, commands, screen, metrics, the docking evidence
		b.readers,       // 9. QR scanner, ID-card reader, the camera and its face trigger
		b.decisionChain, // 10. the card's face check, then the platform and the policy
		b.sealing,       // 11. the full identity sealed to the platform's key
		b.pipeline,      // 12. prepare, decide, plan, record, store, open, audit, observe
		b.watchdog,      // 13. READY=1 once up, WATCHDOG=1 while the pipeline turns
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	b.lifecycle()
	return b.u, nil
}

// builder holds the parts assemble has built so far, for the steps that follow.
type builder struct {
	cfg *config.Config
	opt Options
	log *slog.Logger
	u   *unit
	id  record.Unit

	rel        *relay.GPIO
	barrier    lane.Relay // nil without a barrier (a nil *relay.GPIO would not be)
	cu         *chain.Unit
	ob         *queue.Outbox
	uc         queue.UplinkConfig
	up         *queue.Uplink
	console    *Console
	rec        *events.Recorder
	decs       *decisions
	rl         *reloader
	auditor    *audit.Auditor
	ln         *lane.Lane
	laneInputs []lane.Input
	changed    func() // ops' hook for the lane's changes; set before anything runs
	o          *ops.Ops
	sources    []pipeline.Source
	cam        camera.Camera // nil without one
	trig       *face.Trigger // nil without camera.trigger
	steps      []pipeline.Step
	sealer     pipeline.Sealer
	pl         *pipeline.Pipeline
	wd         *watchdog
}

// barrierRelay drives the barrier relay to its de-energised state before any network or disk,
// even on a unit that goes no further: an unprovisioned unit (placeholder identity, default
// secrets) does nothing else, and its template pins may be wrong for the hardware.
func (b *builder) barrierRelay() error {
	rel, relErr := open.Relay(b.cfg.Barrier)
	if rel != nil {
		b.rel, b.barrier = rel, rel
		b.u.onClose(func() {
			if herr := rel.Halt(); herr != nil {
				b.log.Error("relay halt failed", "relay", rel.String(), "err", herr)
			}
		})
	}
	if perr := refuseUnprovisioned(b.cfg); perr != nil {
		return perr
	}
	if relErr != nil {
		return relErr
	}
	if rel != nil {
		b.log.Info("barrier relay de-energised", "relay", rel.String())
	}
	return nil
}

// outbox opens the outbox: every record is committed here before anything acts on it,
// chained with the unit's key (docs/records.md).
func (b *builder) outbox() error {
	cfg, log := b.cfg, b.log
	cu, created, err := chain.OpenUnit(cfg.Device.Venue, cfg.Device.ID, cfg.Records.ChainHash, cfg.Records.ChainKeyFile, cfg.Records.CreateChainKey())
	if err != nil {
		return fmt.Errorf("records.chain_key_file: %w", err)
	}
	log.Info("records: chained", "chain_hash", cfg.Records.ChainHash, "chain_key", cu.PublicKey(), "key_file", cfg.Records.ChainKeyFile, "key_created", created)
	ob, err := queue.Open(cfg.Queue.Path, queue.Options{Synchronous: cfg.Queue.Synchronous, Logger: log.With("part", "queue"), Chain: cu})
	if err != nil {
		return fmt.Errorf("queue.path: %w", err)
	}
	b.cu, b.ob = cu, ob
	b.u.onClose(func() {
		if cerr := ob.Close(); cerr != nil {
			log.Error("closing the queue", "path", cfg.Queue.Path, "err", cerr)
		}
	})
	if err := ob.SetCapacity(open.Capacity(cfg)); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	b.u.add("queue watch", func(ctx context.Context) error { return watchLosses(ctx, ob, time.Minute, log.With("part", "queue")) })
	return nil
}

// uplink builds the uplink: it delivers what is pending, from this run or an earlier one. It
// stops last, after a moment to deliver what the other parts stored on their way out.
func (b *builder) uplink() error {
	uc, err := open.Uplink(b.cfg, b.log.With("part", "uplink"))
	if err != nil {
		return err
	}
	if b.opt.Console != nil {
		console := &Console{W: b.opt.Console, Wait: 3 * time.Second}
		uc.OnDelivered = func(e queue.Entry) {
			if e.Stream == record.StreamPassage {
				console.Delivered(e.ID)
			}
		}
		b.console = console
	}
	b.uc, b.up = uc, queue.NewUplink(b.ob, uc)
	b.u.addStop("uplink", b.up.Run, func() { flushUplink(b.ob, b.up, b.opt.FlushTimeout) })
	return nil
}

// eventRecorder builds the event recorder: the one path to stream event, for the lane, the
// readers and the commands. It stops after all of them.
func (b *builder) eventRecorder() error {
	b.rec = events.New(b.ob, events.Options{Unit: b.id, Log: b.log.With("part", "events")})
	b.u.add("events", b.rec.Run)
	return nil
}

// platform builds the platform client and the venue's policy, behind the reload's swap point
// (decisions): the pipeline decides, the audit re-checks and ops pings through it. The audit
// (next) gets the client's pings.
func (b *builder) platform() error {
	onPing := func(c verify.Call) { b.auditor.Ping(c) }
	first, err := newDecider(b.cfg, onPing)
	if err != nil {
		return err
	}
	b.decs = &decisions{}
	b.decs.swap(first)
	b.rl = &reloader{path: b.opt.ConfigPath, log: b.log.With("part", "reload"), level: b.opt.LogLevel, decs: b.decs, onPing: onPing}
	b.rl.cfg.Store(b.cfg)
	return nil
}

// audit builds the audit: a row per platform call; the re-checks of flagged passages (those
// allow_and_flag admitted: with another offline policy there are none, until a reload changes
// it); at start, the alerts of those a previous run left unsettled.
func (b *builder) audit() error {
	b.auditor = audit.New(audit.Options{Unit: b.id, Store: b.ob, Scan: b.ob.ScanEntries, ProbeInterval: b.cfg.Platform.ProbeInterval,
		Recheck: b.decs, Log: b.log.With("part", "audit")})
	b.u.add("audit", b.auditor.Run)
	return nil
}

// lane builds the lane: the barrier, the inputs wired to it, the gate mode. Its changes reach
// the status through ops (next), which are set up before anything runs.
func (b *builder) lane() error {
	cfg := b.cfg
	ins, err := open.Inputs(cfg, b.log.With("part", "lane"))
	if err != nil {
		return err
	}
	for _, in := range ins {
		b.laneInputs = append(b.laneInputs, in)
		b.u.onClose(func() { _ = in.Halt() })
	}
	b.ln = lane.New(lane.Options{
		Relay: b.barrier, Pulse: cfg.Barrier.Pulse, MaxPulse: cfg.Barrier.MaxPulse, HoldUntilClosed: cfg.Barrier.Mode == "hold",
		DoorHeldOpen: doorHeldOpen(cfg), ModeFile: statefile.Path(cfg.Queue.Path, lane.ModeFileName),
		Events: b.rec, OnChange: func() { b.changed() }, Log: b.log.With("part", "lane"),
	})
	b.u.add("lane", func(ctx context.Context) error { return b.ln.Run(ctx, b.laneInputs) })
	return nil
}

// operations builds operations: the retained status and the commands on a control connection
// of their own, the verdict screen, the metrics; the verifications the status counts for
// docked (the stored selftest and docking-check, the selftest command's, the daemon's own
// platform check: they claim no device, use the config and the platform client in force, and
// every call they make is audited).
func (b *builder) operations() error {
	cfg, rl, decs, auditor, ln := b.cfg, b.rl, b.decs, b.auditor, b.ln
	var err error
	b.o, err = ops.New(ops.Options{
		Cfg: cfg, Lane: ln, Queue: b.ob, Uplink: b.up, Control: b.uc, Pinger: decs, Events: b.rec,
		Selftest: func(ctx context.Context) record.SelftestState {
			return selftest.Live(ctx, rl.current(), selftest.Options{Platform: decs.now().client, Audit: auditor.Checked},
				selftest.Held{Readers: b.o.Readers(), Relay: ln.Barrier()})
		},
		PlatformCheck: func(ctx context.Context) record.SelftestState {
			return selftest.PlatformCheck(ctx, rl.current(), selftest.Options{Platform: decs.now().client, Audit: auditor.Checked})
		},
		Verifications: selftest.Store{QueuePath: cfg.Queue.Path},
		Reload:        rl.reloadFor(b.opt.ConfigPath),
		Counters:      ops.Counters{Passages: func() int64 { return b.pl.Counters().Passages }, AuditLost: auditor.Lost, Events: b.rec.Stats},
		Log:           b.log.With("part", "ops"),
		Head:          b.cu.StatusHead(b.ob, func(err error) { b.log.Warn("status: sent without its signed head", "err", err) }),
		Settle:        auditor.Settle,
	})
	if err != nil {
		return err
	}
	rl.ops = b.o
	b.u.reload = rl.reload
	b.changed = b.o.Changed
	b.u.add("ops", b.o.Run)
	return nil
}

// readers opens the credential readers the config names and the camera; with a face trigger
// (camera.trigger) the camera's stream is a source too. The pipeline runs them.
func (b *builder) readers() error {
	var err error
	if b.sources, err = openReaders(b.cfg, b.log, b.o); err != nil {
		return err
	}
	if b.cam, err = open.Camera(b.cfg, b.log.With("part", "camera")); err != nil || b.cam == nil {
		return err
	}
	b.u.onClose(func() { _ = b.cam.Halt() })
	trig, err := faceTrigger(b.u, b.cfg, b.cam, b.o, b.log.With("part", "face"))
	if err != nil || trig == nil {
		return err
	}
	b.sources = append(b.sources, trig)
	b.trig = trig
	return nil
}

// decisionChain builds the steps before the platform: a card read first gets the snapshot its
// face check needs (when camera.verify asks for one); then the platform and the venue's policy
// decide (decisions).
func (b *builder) decisionChain() error {
	b.steps = faceSteps(b.cfg, b.cam, b.decs.PolicyHash(), b.o, b.log.With("part", "face"))
	return nil
}

// sealing loads the keys: with the platform's key, the full identity (and a kept face) is
// sealed into each record; without, records carry masked fields only.
func (b *builder) sealing() error {
	s, err := open.Sealer(b.cfg, b.log.With("part", "privacy"))
	switch {
	case err != nil:
		return err
	case s != nil:
		b.sealer = s
		b.log.Info("privacy: sealing subjects to the platform key", "key_sha256", s.Fingerprint(), "hash_key", b.cfg.Privacy.HashKeyFile)
	default:
		b.log.Info("privacy: no platform key (privacy.platform_key_file); records carry masked fields only")
	}
	return nil
}

// pipeline builds the passage loop: prepare, decide, plan, record, store, open, audit,
// observe. It runs in the foreground (unit.main).
func (b *builder) pipeline() error {
	observers := []pipeline.Observer{b.o}
	if b.console != nil {
		observers = append(observers, pipeline.ObserverFunc(b.console.Passage))
	}
	if b.trig != nil {
		observers = append(observers, pipeline.ObserverFunc(func(o pipeline.Outcome) {
			if byCard(o.Record) {
				b.trig.Hold() // the card holder in view is not searched by face too
			}
		}))
	}
	b.pl = pipeline.New(pipeline.Options{
		Unit: b.id, Steps: b.steps, Decider: b.decs, Store: b.ob, Barrier: b.ln, Sealer: b.sealer,
		Auditor: b.auditor, Observers: observers, Log: b.log.With("part", "pipeline"), LivenessTick: b.opt.LivenessTick,
	})
	return nil
}

// watchdog builds the systemd watchdog: READY=1 once the pipeline is up, then WATCHDOG=1 only
// while it turns. Without NOTIFY_SOCKET, nothing.
func (b *builder) watchdog() error {
	wd, err := newWatchdog(b.pl.LastActive, b.opt.LivenessTick, b.log.With("part", "watchdog"))
	if err != nil {
		return err
	}
	if wd != nil {
		b.wd = wd
		b.u.add("watchdog", wd.run)
	}
	return nil
}

// lifecycle sets what happens around the pipeline. Before the first passage: the gate mode
// written before the last stop is in force (a restored always_open holds the barrier once
// start-up completed), and the audit's start-up scan has its snapshot, so that nothing of this
// run is taken for a previous run's. Right after the readers stopped and the decision in
// flight finished: the barrier closes (the gate mode's hold ends without changing the mode: a
// restart restores it).
func (b *builder) lifecycle() {
	cfg, log, ln := b.cfg, b.log, b.ln
	ln.RestoreGateMode()
	b.u.ready = func() {
		<-b.auditor.Started()
		ln.AssertGateMode()
		log.Info("pipeline up", "device", cfg.Device.ID, "venue", cfg.Device.Venue, "style", cfg.Device.Style,
			"sources", len(b.sources), "platform", cfg.Platform.URL, "policy", b.decs.PolicyHash(), "queue", filepath.Clean(cfg.Queue.Path))
		if b.opt.Ready != nil {
			b.opt.Ready()
		}
		if b.wd != nil {
			b.wd.up()
		}
	}
	b.u.main = func(ctx context.Context) error { return b.pl.Run(ctx, b.sources...) }
	b.u.done = func() {
		if err := ln.Stop(); err != nil {
			log.Warn("gate mode: releasing the hold at shutdown", "err", err)
		}
		if b.rel != nil {
			_ = b.rel.Halt()
		}
		c := b.pl.Counters()
		log.Info("stopping", "passages", c.Passages, "lost", c.Lost)
	}
}

// openReaders opens the credential readers the config names, each reporting its coming and
// going to ops (status, screen, metrics, events). A unit with a face trigger may have none.
func openReaders(cfg *config.Config, log *slog.Logger, o *ops.Ops) ([]pipeline.Source, error) {
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
	if len(sources) == 0 && cfg.FaceTrigger() == config.CameraTriggerNone {
		return nil, errors.New("scanners: no credential reader configured")
	}
	return sources, nil
}

// faceTrigger builds the source of face-only passages (camera.trigger detect or presence):
// the camera's stream, the watcher (with the detector, or the presence sensor) and the
// screen's hints; nil with camera.trigger none. The stream's stalls, and frames that come but
// are all skipped for camera.stall, are camera_offline and camera_online events.
func faceTrigger(u *unit, cfg *config.Config, cam camera.Camera, o *ops.Ops, log *slog.Logger) (*face.Trigger, error) {
	mode := cfg.FaceTrigger()
	if mode == config.CameraTriggerNone {
		return nil, nil
	}
	st, ok := cam.(streamCamera)
	if !ok {
		return nil, fmt.Errorf("camera.trigger: %s needs a streaming camera (camera.driver mjpeg or v4l2), not %s", mode, cam)
	}
	w, closer, err := open.FaceWatcher(cfg)
	if err != nil {
		return nil, err
	}
	if closer != nil {
		u.onClose(func() { _ = closer.Close() })
	}
	opt := face.TriggerOptions{Stream: st, Watcher: w, OnHint: o.FaceHint, HoldFor: cfg.Camera.Rearm, Log: log}
	if mode == config.CameraTriggerPresence {
		in, err := open.Input(cfg, "presence", log)
		if err != nil {
			return nil, err
		}
		if in == nil {
			return nil, errors.New("camera.trigger: presence needs inputs.presence")
		}
		u.onClose(func() { _ = in.Halt() })
		opt.Presence = in
	}
	opt.OnState, opt.Stall = o.CameraState(), cfg.Camera.Stall
	trig, err := face.NewTrigger(opt)
	if err != nil {
		return nil, err
	}
	st.OnState(trig.StreamState) // the stream's state, with the trigger's: every frame skipped
	log.Info("face trigger on: a face in view is searched on the platform (face-only passages)",
		"camera", cam.String(), "trigger", mode, "min_face", cfg.Camera.MinFace, "rearm", cfg.Camera.Rearm,
		"retrigger", cfg.Camera.Retrigger, "face_min_score", cfg.Policy.FaceMinScore)
	return trig, nil
}

// byCard says whether a passage was made with the ID card (alone, or with its face check):
// the person is in front of the camera, and the face trigger must not search them again.
func byCard(r record.Passage) bool {
	return r.Credential == verify.KindIDCard || (r.Credential == verify.KindFace && r.Face != nil && r.Face.Check == record.FaceCheckCard)
}

// streamCamera is a camera that streams (camera.MJPEG, camera.V4L2) and reports its stalls.
type streamCamera interface {
	face.FrameStream
	OnState(func(online bool, err error))
}

// faceSteps builds, when camera.verify asks for it, the face check of card reads; with a
// face trigger the card check's snapshot is the stream's newest frame, and the stream
// reports the camera's state.
func faceSteps(cfg *config.Config, cam camera.Camera, policyHash string, o *ops.Ops, log *slog.Logger) []pipeline.Step {
	if cam == nil {
		return nil
	}
	when := cfg.FaceVerify()
	if when == config.CameraVerifyNever || cfg.Scanners.IDCard == nil {
		log.Info("camera ready; no snapshot is taken for card reads", "camera", cam.String(), "camera_verify", when)
		return nil
	}
	log.Info("face verification on: each ID-card passage is decided by a snapshot and the card's ID number",
		"camera", cam.String(), "camera_verify", when, "keep", cfg.Camera.Keep)
	onState := o.ReaderState("camera")
	if cfg.FaceTrigger() != config.CameraTriggerNone {
		onState = nil
	}
	return []pipeline.Step{face.NewCardCheck(face.CardCheckOptions{
		Camera: cam, Required: when == config.CameraVerifyRequired, Budget: cfg.Camera.Timeout,
		PolicyHash: policyHash, OnState: onState, Log: log,
	})}
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
