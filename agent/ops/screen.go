package ops

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/screen"
)

// verdictView turns a record into what the screen shows: masked fields only (the record
// holds nothing else).
func verdictView(r record.Passage, hold time.Duration) screen.Verdict {
	return screen.Verdict{
		Verdict: r.Verdict, Reason: r.Reason, Text: screen.ReasonText(r.Reason),
		SubjectID: r.Subject.ID, SubjectName: r.Subject.Name,
		HealthCode: r.HealthCode, NATSampledAt: r.NATSampledAt,
		Mode: r.Mode, Gate: r.Gate, GateMode: r.GateMode, TS: r.TS,
		HoldMS: hold.Milliseconds(),
	}
}

func unitView(s record.Status) screen.Unit {
	return screen.Unit{
		Venue: s.Venue, Device: s.Device, Unit: s.Unit, Location: s.Location,
		Platform: s.Platform, Uplink: s.Uplink, QueuePending: s.QueuePending,
		Mode: s.Mode, Clock: s.Clock, Readers: s.Readers, FireAlarm: s.FireAlarm,
	}
}

// screenPart is the verdict screen: its server, and a kick when the unit's state changed.
type screenPart struct {
	srv  *screen.Server
	kick chan struct{}
	hold atomic.Int64 // screen.verdict_hold, ns (a reload changes it)
}

// setHold sets how long a verdict stays on screen.
func (p *screenPart) setHold(d time.Duration) {
	if p != nil {
		p.hold.Store(int64(d))
	}
}

// newScreen builds the verdict screen; nil with screen.listen off.
func (o *Ops) newScreen() *screenPart {
	c := o.opt.Cfg.Screen
	if c.Listen == config.ListenOff {
		return nil
	}
	p := &screenPart{kick: make(chan struct{}, 1)}
	p.setHold(c.VerdictHold)
	p.srv = screen.New(screen.Options{
		OnDisconnect: func(why string) { o.metrics.screenDropped.WithLabelValues(why).Inc() },
		OnClients:    func(n int) { o.metrics.screenClients.Set(float64(n)) },
	})
	o.listeners = append(o.listeners, func() {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	})
	return p
}

// show puts a passage on the screen.
func (p *screenPart) show(r record.Passage) {
	if p != nil {
		p.srv.Show(verdictView(r, time.Duration(p.hold.Load())))
	}
}

// serveScreen serves the verdict screen on screen.listen and keeps its unit state fresh,
// until ctx ends.
func (o *Ops) serveScreen(ctx context.Context) {
	p := o.scr
	if p == nil {
		return
	}
	c := o.opt.Cfg.Screen
	go func() {
		t := time.NewTicker(o.t.ScreenRefresh)
		defer t.Stop()
		for {
			p.srv.SetUnit(unitView(o.Status(ctx)))
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-p.kick:
			}
		}
	}()
	err := o.serveLoopback(ctx, "screen.listen", c.Listen, c.AllowRemote, p.srv, func(l net.Listener) {
		if config.IsLoopbackListen(c.Listen) {
			// Only the names a browser on the unit uses (no DNS rebinding).
			p.srv.SetAllowedHosts(screen.LoopbackHosts(l.Addr().String()))
		}
	})
	if err != nil {
		o.opt.Log.Error("screen stopped", "err", err)
	}
}
