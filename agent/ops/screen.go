package ops

import (
	"context"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/lane"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/screen"
)

// verdictView turns a record into what the screen shows: masked fields only (the record
// holds nothing else), and the reason in the words for its credential, to the person and to
// the staff.
func verdictView(r record.Passage, hold time.Duration) screen.Verdict {
	m := screen.Explain(r.Reason, r.Credential)
	return screen.Verdict{
		Verdict: r.Verdict, Reason: r.Reason, Credential: r.Credential, Text: m.Person, Staff: m.Staff,
		SubjectID: r.Subject.ID, SubjectName: r.Subject.Name,
		HealthCode: r.HealthCode, NATSampledAt: r.NATSampledAt,
		Mode: r.Mode, Gate: r.Gate, GateMode: r.GateMode, TS: r.TS,
		HoldMS: hold.Milliseconds(),
	}
}

// unitView is the unit's state as the screen shows it: the status, the lane's fire alarm and
// tamper switch, and from the config whether there is a barrier to hold open, what the unit
// does offline and which credentials it asks for.
func unitView(s record.Status, ls lane.State, cfg *config.Config) screen.Unit {
	return screen.Unit{
		Venue: s.Venue, Device: s.Device, Unit: s.Unit, Location: s.Location,
		Platform: s.Platform, Uplink: s.Uplink, QueuePending: s.QueuePending,
		Mode: s.Mode, Clock: s.Clock, Readers: s.Readers,
		FireAlarm: ls.FireAlarm, Tamper: ls.Tamper, Barrier: cfg.HasBarrier(),
		OfflinePolicy: cfg.Platform.OfflinePolicy, Accepts: screenAccepts(cfg),
	}
}

// screenAccepts are the ways in the idle screen asks for: each reader the unit has whose
// credential its policy (policy.credentials for its style) accepts. An ID card that the
// camera confirms (camera.verify with_idcard or required) is asked for with the face; a face
// trigger (camera.trigger) asks for the face alone. A pillar asks for its face and card
// first, other styles for the QR code first.
func screenAccepts(cfg *config.Config) []string {
	accepts := cfg.AcceptedCredentials()
	ok := func(kind string) bool { return len(accepts) == 0 || slices.Contains(accepts, kind) }
	var card, qr []string
	switch {
	case cfg.Scanners.IDCard == nil:
	case cfg.FaceVerify() != config.CameraVerifyNever:
		card = []string{screen.KindFace}
	case ok(screen.KindIDCard):
		card = []string{screen.KindIDCard}
	}
	if cfg.Scanners.QR != nil && ok(screen.KindQR) {
		qr = []string{screen.KindQR}
	}
	var faceAlone []string
	if cfg.FaceTrigger() != config.CameraTriggerNone && ok(screen.KindFace) {
		faceAlone = []string{screen.KindFaceAlone}
	}
	if cfg.Device.Style == config.StylePillar {
		return slices.Concat(faceAlone, card, qr)
	}
	return slices.Concat(qr, card, faceAlone)
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

// FaceHint puts what a face trigger asks of the person on the screen (FaceHint("") clears
// it); without a screen it does nothing. It never blocks.
func (o *Ops) FaceHint(code string) {
	if o.scr != nil {
		o.scr.srv.ShowHint(code)
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
			p.srv.SetUnit(unitView(o.Status(ctx), o.opt.Lane.State(), o.live.Load()))
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
