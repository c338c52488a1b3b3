package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
)

// ErrStart wraps every start-up failure; the message names the config key to fix.
var ErrStart = errors.New("agent: cannot start")

// Options are the daemon's process-level settings.
type Options struct {
	Log *slog.Logger
	// Console, when set, gets one line per passage.
	Console io.Writer
	// FlushTimeout bounds how long shutdown waits for the uplink to deliver what is pending;
	// 0 means 2s.
	FlushTimeout time.Duration
	// Ready, when set, is called once the pipeline is up.
	Ready func()
	// ConfigPath is the file the config came from; a reload reads it again ("": no reload).
	ConfigPath string
	// Reload, when set, asks for a reload with every value (run sends one per SIGHUP): the
	// file at ConfigPath is read again, what can change live changes, what cannot is named
	// in the log, and an invalid file is refused (docs/operations.md, "Reload"). The signed
	// reload command takes the same path.
	Reload <-chan struct{}
	// LogLevel, when set, is the level of Log that a reload changes (log.level).
	LogLevel *slog.LevelVar
	// LivenessTick is how often an idle pipeline turns (the watchdog's evidence); 0 means 1s.
	LivenessTick time.Duration
}

// Run runs the unit cfg describes until ctx ends. It returns nil on a clean shutdown, and an
// error that names the failing part (and the config key) when start-up fails or a reader
// fails for good.
func Run(ctx context.Context, cfg *config.Config, opt Options) error {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.FlushTimeout <= 0 {
		opt.FlushTimeout = 2 * time.Second
	}
	u, err := assemble(cfg, opt)
	if err != nil {
		return err
	}
	if opt.Reload != nil && u.reload != nil {
		rctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			for {
				select {
				case <-rctx.Done():
					return
				case <-opt.Reload:
					u.reload("SIGHUP")
				}
			}
		}()
	}
	return u.run(ctx)
}

// part is one running piece of the unit: it runs until its context ends.
type part struct {
	name string
	run  func(ctx context.Context) error
	// stop, when set, runs before the part's context is cancelled (the uplink's flush).
	stop func()
}

// unit is an assembled unit: its parts in start order, what closes after them, and the
// pipeline that runs in the foreground.
type unit struct {
	log    *slog.Logger
	parts  []part
	closes []func() // run after every part stopped, in reverse order (the outbox, the relay)
	main   func(ctx context.Context) error
	ready  func() // once every part runs, right before main
	done   func() // after main returned, before the parts stop
	// reload re-reads the config (reloader.reload); nil when there is nothing to reload.
	reload func(by string) (ok bool, detail string)
}

// add appends a part; parts start in the order added and stop in reverse.
func (u *unit) add(name string, run func(context.Context) error) {
	u.parts = append(u.parts, part{name: name, run: run})
}

// addStop is add with a step that runs before the part's context is cancelled.
func (u *unit) addStop(name string, run func(context.Context) error, stop func()) {
	u.parts = append(u.parts, part{name: name, run: run, stop: stop})
}

// onClose registers f to run after every part stopped (in reverse order of registration).
func (u *unit) onClose(f func()) { u.closes = append(u.closes, f) }

// close runs what was registered with onClose, in reverse order: used by run, and by
// assemble when start-up fails half way.
func (u *unit) close() {
	for i := len(u.closes) - 1; i >= 0; i-- {
		u.closes[i]()
	}
	u.closes = nil
}

type running struct {
	part
	cancel context.CancelFunc
	done   chan struct{}
}

// run starts the parts in order, runs main until ctx ends (or main fails), then stops the
// parts in reverse order, each after the one started after it has returned, and closes.
func (u *unit) run(ctx context.Context) error {
	defer u.close()
	var rs []running
	for _, p := range u.parts {
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		r := running{part: p, cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(r.done)
			if err := p.run(pctx); err != nil && pctx.Err() == nil {
				u.log.Error("part stopped", "part", p.name, "err", err)
			}
		}()
		rs = append(rs, r)
	}
	if u.ready != nil {
		u.ready()
	}
	err := u.main(ctx)
	if u.done != nil {
		u.done()
	}
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].stop != nil {
			rs[i].stop()
		}
		rs[i].cancel()
		stopWait(u.log, rs[i])
	}
	return err
}

// stopWait waits for a stopping part, saying so when it takes long.
func stopWait(log *slog.Logger, r running) {
	select {
	case <-r.done:
		return
	case <-time.After(10 * time.Second):
		log.Warn("a part is slow to stop; waiting", "part", r.name)
	}
	<-r.done
}
