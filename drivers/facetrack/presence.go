package facetrack

import (
	"time"
)

// presence is the presence mode's state.
type presence struct {
	active     bool
	lastChange time.Time // when it last went inactive
	armed      bool      // a trigger is due for the current presence
	triggered  time.Time // the last trigger
	window     time.Time // the first good frame since armed
	good       int
	best       []byte // a copy of the best frame so far
	bestQ      Quality
	bestAt     time.Time
	bestScore  float64
}

// Presence tells the watcher that the presence sensor went active or inactive at at. A new
// presence triggers when the sensor was inactive for at least Rearm (or never active); a
// shorter gap is the same person.
func (w *Watcher) Presence(at time.Time, active bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := &w.pres
	if active == p.active {
		return
	}
	p.active = active
	if !active {
		p.lastChange = at
		p.dropBest()
		p.window, p.good = time.Time{}, 0
		return
	}
	if p.triggered.IsZero() || p.lastChange.IsZero() || at.Sub(p.lastChange) >= w.opts.Rearm {
		p.armed = true
	}
}

func (p *presence) dropBest() {
	clear(p.best)
	p.best, p.bestScore = nil, 0
}

// presenceFrame: while a presence is armed, the frames are measured whole (brightness gate,
// sharpness to rank) and the best of the first BestOf good ones (or of BestWithin) is the
// trigger, sent as it came from the camera.
func (w *Watcher) presenceFrame(at time.Time, frame []byte) (Step, error) {
	p := &w.pres
	if p.active && !p.armed && w.opts.Retrigger > 0 && !p.triggered.IsZero() && at.Sub(p.triggered) >= w.opts.Retrigger {
		p.armed = true
	}
	if !p.active || !p.armed {
		return Step{Hint: HintNone}, nil
	}
	img, gray, err := w.decode(frame)
	if err != nil {
		return Step{}, err
	}
	q := Measure(gray, gray.Rect)
	zeroImage(img)
	st := Step{Hint: HintNone}
	if q.Brightness < w.opts.MinBrightness || q.Brightness > w.opts.MaxBrightness {
		st.Hint = HintMoreLight
	} else {
		if p.window.IsZero() {
			p.window = at
		}
		p.good++
		if p.best == nil || q.Sharpness > p.bestScore {
			p.dropBest()
			p.best, p.bestQ, p.bestAt, p.bestScore = append([]byte(nil), frame...), q, at, q.Sharpness
		}
	}
	if p.window.IsZero() || (p.good < w.opts.BestOf && at.Sub(p.window) < w.opts.BestWithin) {
		return st, nil
	}
	st.Trigger = &Trigger{Mode: ModePresence, JPEG: p.best, At: p.bestAt, Quality: p.bestQ}
	p.best, p.bestScore = nil, 0 // handed over
	p.armed, p.triggered, p.window, p.good = false, at, time.Time{}, 0
	st.Hint = HintNone
	return st, nil
}
