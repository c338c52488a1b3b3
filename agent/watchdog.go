package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// The systemd watchdog. Under systemd (Type=notify, WatchdogSec=) the daemon says READY=1
// once the pipeline is up, then WATCHDOG=1 at a quarter of the watchdog interval, but only
// while the pipeline loop is alive: its LastActive must have advanced within the stall
// limit. A stuck decision, a stuck outbox write or a dead loop stops the pings and systemd
// restarts the unit (Restart=always). Without NOTIFY_SOCKET there is no watchdog.

// sdNotify sends one notification; an OS seam that tests may swap.
var sdNotify = func(state string) error {
	_, err := daemon.SdNotify(false, state)
	return err
}

// watchdog pings systemd while the pipeline turns.
type watchdog struct {
	interval   time.Duration // 0: systemd asked for READY only, no watchdog
	stall      time.Duration
	lastActive func() time.Time
	log        *slog.Logger
	ready      chan struct{}
}

// newWatchdog returns the watchdog systemd asked for (NOTIFY_SOCKET, WATCHDOG_USEC), nil
// when it asked for none. lastActive is the pipeline's; tick its idle turn (0: 1s): the stall
// limit is half the interval, and at least three idle turns.
func newWatchdog(lastActive func() time.Time, tick time.Duration, log *slog.Logger) (*watchdog, error) {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil, nil
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return nil, fmt.Errorf("systemd watchdog: %w", err)
	}
	if tick <= 0 {
		tick = time.Second
	}
	return &watchdog{interval: interval, stall: max(interval/2, 3*tick), lastActive: lastActive, log: log, ready: make(chan struct{})}, nil
}

// up says the pipeline is up: READY=1 may be sent.
func (w *watchdog) up() { close(w.ready) }

func (w *watchdog) run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-w.ready:
	}
	if err := sdNotify("READY=1\nSTATUS=pipeline up"); err != nil {
		w.log.Warn("systemd notify failed", "err", err)
	}
	defer func() { _ = sdNotify("STOPPING=1\nSTATUS=stopping") }()
	if w.interval == 0 {
		<-ctx.Done()
		return nil
	}
	w.log.Info("systemd watchdog on", "interval", w.interval, "stall_after", w.stall)
	tick := time.NewTicker(max(w.interval/4, time.Millisecond))
	defer tick.Stop()
	stalled := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		age := time.Since(w.lastActive())
		if age > w.stall {
			if !stalled {
				stalled = true
				w.log.Error("pipeline stalled: withholding watchdog pings so that systemd restarts the unit",
					"last_active_ago", age.Round(time.Millisecond), "stall_after", w.stall)
				_ = sdNotify(fmt.Sprintf("STATUS=pipeline stalled for %s", age.Round(time.Second)))
			}
			continue
		}
		if stalled {
			stalled = false
			w.log.Warn("pipeline alive again: watchdog pings resume")
			_ = sdNotify("STATUS=pipeline up")
		}
		if err := sdNotify("WATCHDOG=1"); err != nil {
			w.log.Warn("systemd watchdog ping failed", "err", err)
		}
	}
}
