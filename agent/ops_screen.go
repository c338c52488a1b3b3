package agent

import (
	"context"
	"net"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/screen"
)

// screenRefresh is how often the screen's unit state is rebuilt when nothing signalled a
// change (the uplink and the queue are read, not signalled).
var screenRefresh = 2 * time.Second

func init() {
	RegisterPart(Part{Name: "screen", Order: 52, Setup: setupScreen})
}

// verdictView turns a record into what the screen shows: masked fields only (the record
// holds nothing else).
func verdictView(r Record, hold time.Duration) screen.Verdict {
	return screen.Verdict{
		Verdict: r.Verdict, Reason: r.Reason, Text: screen.ReasonText(r.Reason),
		SubjectID: r.Subject.ID, SubjectName: r.Subject.Name,
		HealthCode: r.HealthCode, NATSampledAt: r.NATSampledAt,
		Mode: r.Mode, Gate: r.Gate, GateMode: r.GateMode, TS: r.TS,
		HoldMS: hold.Milliseconds(),
	}
}

func unitView(s Status) screen.Unit {
	return screen.Unit{
		Venue: s.Venue, Device: s.Device, Unit: s.Unit, Location: s.Location,
		Platform: s.Platform, Uplink: s.Uplink, QueuePending: s.QueuePending,
		Mode: s.Mode, Clock: s.Clock, Readers: s.Readers, FireAlarm: s.FireAlarm,
	}
}

func setupScreen(_ context.Context, d *Daemon) (func(context.Context) error, error) {
	c := d.Cfg.Screen
	if c.Listen == config.ListenOff {
		return nil, nil
	}
	st := d.ops()
	srv := screen.New(screen.Options{
		OnDisconnect: func(why string) { st.metrics.screenDropped.WithLabelValues(why).Inc() },
		OnClients:    func(n int) { st.metrics.screenClients.Set(float64(n)) },
	})
	hold := c.VerdictHold
	d.Observe(func(p Passage) { srv.Show(verdictView(p.Record, hold)) })
	kick := make(chan struct{}, 1)
	st.onUnitChange(func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	})
	return func(ctx context.Context) error {
		go func() {
			t := time.NewTicker(screenRefresh)
			defer t.Stop()
			for {
				srv.SetUnit(unitView(st.status(ctx)))
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				case <-kick:
				}
			}
		}()
		return serveLoopback(ctx, d, "screen.listen", c.Listen, c.AllowRemote, srv, func(l net.Listener) {
			if config.IsLoopbackListen(c.Listen) {
				// Only the names a browser on the unit uses (no DNS rebinding).
				srv.SetAllowedHosts(screen.LoopbackHosts(l.Addr().String()))
			}
		})
	}, nil
}
