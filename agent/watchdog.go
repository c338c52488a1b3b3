package agent

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// The systemd watchdog. Under systemd (Type=notify, WatchdogSec=) the daemon says READY=1
// once the pipeline is up, then WATCHDOG=1 at a quarter of the watchdog interval, but only
// while the pipeline loop is alive: Pipeline.LastActive must have advanced within
// watchdogStallAfter. A stuck decision, a stuck outbox write or a dead loop stops the pings
// and systemd restarts the unit (Restart=always). Without NOTIFY_SOCKET the part does nothing.

// Watchdog tunables; tests shrink them.
var (
	// watchdogStallAfter is how old Pipeline.LastActive may be before pings stop; 0 derives
	// it from the interval: half of it, and at least three idle turns of the loop.
	watchdogStallAfter time.Duration
	// sdNotify sends one notification; a package variable so tests can count them.
	sdNotify = func(state string) error {
		_, err := daemon.SdNotify(false, state)
		return err
	}
)

func init() {
	RegisterPart(Part{Name: "watchdog", Order: 1000, Setup: setupWatchdog})
}

// watchdog holds what the part needs once running.
type watchdog struct {
	d        *Daemon
	interval time.Duration // 0: systemd asked for READY only, no watchdog
	stall    time.Duration
	ready    chan struct{}
}

func setupWatchdog(_ context.Context, d *Daemon) (func(context.Context) error, error) {
	if !notifySocketSet() {
		return nil, nil
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return nil, fmt.Errorf("systemd watchdog: %w", err)
	}
	w := &watchdog{d: d, interval: interval, ready: make(chan struct{})}
	w.stall = watchdogStallAfter
	if w.stall == 0 {
		w.stall = max(interval/2, 3*livenessTick)
	}
	// The daemon calls Opt.Ready right before the pipeline loop starts.
	prev := d.Opt.Ready
	d.Opt.Ready = func() {
		if prev != nil {
			prev()
		}
		close(w.ready)
	}
	return w.run, nil
}

func (w *watchdog) run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-w.ready:
	}
	log := w.d.Log.With("part", "watchdog")
	if err := sdNotify("READY=1\nSTATUS=pipeline up"); err != nil {
		log.Warn("systemd notify failed", "err", err)
	}
	defer func() { _ = sdNotify("STOPPING=1\nSTATUS=stopping") }()
	if w.interval == 0 {
		<-ctx.Done()
		return nil
	}
	log.Info("systemd watchdog on", "interval", w.interval, "stall_after", w.stall)
	tick := time.NewTicker(max(w.interval/4, time.Millisecond))
	defer tick.Stop()
	stalled := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		age := time.Since(w.d.Pipeline.LastActive())
		if age > w.stall {
			if !stalled {
				stalled = true
				log.Error("pipeline stalled: withholding watchdog pings so that systemd restarts the unit",
					"last_active_ago", age.Round(time.Millisecond), "stall_after", w.stall)
				_ = sdNotify(fmt.Sprintf("STATUS=pipeline stalled for %s", age.Round(time.Second)))
			}
			continue
		}
		if stalled {
			stalled = false
			log.Warn("pipeline alive again: watchdog pings resume")
			_ = sdNotify("STATUS=pipeline up")
		}
		if err := sdNotify("WATCHDOG=1"); err != nil {
			log.Warn("systemd watchdog ping failed", "err", err)
		}
	}
}

// notifySocketSet says whether systemd (or a test) asked for notifications.
func notifySocketSet() bool { return os.Getenv("NOTIFY_SOCKET") != "" }
