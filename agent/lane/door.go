package lane

import (
	"time"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/drivers/inputs"
)

// door handles the door (barrier-position) sensor: active means open. An opening nothing
// explains within ForcedGrace is door_forced_open; one that lasts DoorHeldOpen is
// door_held_open; the close after either is door_closed. In hold mode the close ends the
// opening's pulse.
func (l *Lane) door(c inputs.Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.Active == l.doorOpen && !c.Initial {
		return
	}
	l.doorOpen = c.Active
	l.doorSeq++
	seq := l.doorSeq
	if l.doorTimer != nil {
		l.doorTimer.Stop()
		l.doorTimer = nil
	}
	if !c.Active {
		l.doorClosed(c)
		return
	}
	openedAt := c.At
	if !c.Initial {
		// Forced open: nothing explains the opening within the grace time. (A door open at
		// start-up only gets the held-open alarm.)
		time.AfterFunc(l.opt.ForcedGrace, func() { l.checkForced(seq, openedAt) })
	}
	held := l.opt.DoorHeldOpen
	if held <= 0 {
		return
	}
	l.doorTimer = time.AfterFunc(held, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.doorSeq != seq || !l.doorOpen || l.fire == record.FireAlarmActive || l.heldByRelay() {
			return
		}
		l.doorAlarm = true
		l.opt.Log.Warn("door held open", "for", held)
		l.opt.Events.Emit(record.Event{Type: record.EventDoorHeldOpen, Source: InputDoorSensor})
	})
}

// doorClosed: the door closed; l.mu is held.
func (l *Lane) doorClosed(c inputs.Change) {
	if l.doorAlarm {
		l.doorAlarm = false
		l.opt.Events.Emit(record.Event{Type: record.EventDoorClosed, Source: InputDoorSensor})
	}
	if l.opt.HoldUntilClosed && !c.Initial && l.opt.Relay != nil {
		if err := l.opt.Relay.EndPulse(); err != nil {
			l.opt.Log.Error("door closed: relay did not release", "err", err)
		}
	}
}

func (l *Lane) checkForced(seq int, openedAt time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.doorSeq != seq || !l.doorOpen || l.fire == record.FireAlarmActive || l.heldByRelay() {
		return
	}
	if !l.authorised.IsZero() && l.authorised.After(openedAt.Add(-l.openFor()-l.opt.AuthorisedSlack)) {
		return
	}
	l.doorAlarm = true
	l.opt.Log.Warn("door forced open")
	l.opt.Events.Emit(record.Event{Type: record.EventDoorForcedOpen, Source: InputDoorSensor})
}

// openFor is how long an opening keeps the relay energised at most.
func (l *Lane) openFor() time.Duration {
	if l.opt.HoldUntilClosed {
		return l.opt.MaxPulse
	}
	return l.opt.Pulse
}

// heldByRelay says whether the barrier is held open on purpose (always_open, fire alarm).
func (l *Lane) heldByRelay() bool { return l.opt.Relay != nil && l.opt.Relay.Held() }

func (l *Lane) stopTimers() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.doorSeq++
	if l.doorTimer != nil {
		l.doorTimer.Stop()
	}
}
