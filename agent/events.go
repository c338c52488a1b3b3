package agent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Events: one record type (Event) on one outbox stream ("event", published on
// <prefix>/<venue>/<device>/event), written by one path: the non-blocking eventRecorder.
// Devices, remote commands and the agent itself all record through it (docs/events.md).

// StreamEvent is the outbox stream, and the topic kind, of every event record.
const StreamEvent = "event"

// Older names of StreamEvent, kept for their callers.
const (
	// StreamEventOps is StreamEvent.
	StreamEventOps = StreamEvent
	// streamDeviceEvent is StreamEvent.
	streamDeviceEvent = StreamEvent
)

// Event types: the value of an event's type field (docs/events.md lists them all).
const (
	// Devices (devices.go; docs/drivers.md).
	EventExitButton       = "exit_button"
	EventDoorForcedOpen   = "door_forced_open"
	EventDoorHeldOpen     = "door_held_open"
	EventDoorClosed       = "door_closed" // after a forced- or held-open alarm
	EventFireAlarm        = "fire_alarm"
	EventFireAlarmCleared = "fire_alarm_cleared"
	EventTamper           = "tamper"
	EventTamperCleared    = "tamper_cleared"
	EventReaderOffline    = "reader_offline"
	EventReaderOnline     = "reader_online"
	// Operations (ops_commands.go, ops_mode.go; docs/operations.md).
	EventCommand      = "command"       // a remote command, done or refused
	EventModeRestored = "mode_restored" // the gate mode read back at start
)

// EventTypes lists every event type, in documentation order.
var EventTypes = []string{
	EventExitButton, EventDoorForcedOpen, EventDoorHeldOpen, EventDoorClosed,
	EventFireAlarm, EventFireAlarmCleared, EventTamper, EventTamperCleared,
	EventReaderOffline, EventReaderOnline, EventCommand, EventModeRestored,
}

// Event sources that are not a device input or a reader.
const (
	SourceCommand = "command" // the remote command channel
	SourceAgent   = "agent"   // the agent itself (the gate mode restored at start)
)

// Event is the record on the event stream. It holds no personal data. Its field names are a
// contract (docs/events.md): add fields, never rename them. The recorder fills id, seq, ts,
// device, venue and clock; the caller fills type, source and what the type uses.
type Event struct {
	ID     string `json:"id"`
	Seq    int64  `json:"seq"`
	TS     string `json:"ts"`
	Device string `json:"device"`
	Venue  string `json:"venue"`
	Clock  string `json:"clock"`
	Type   string `json:"type"`
	// Source says what the event comes from: an input (exit_button, door_sensor, fire_alarm,
	// tamper), a reader (qr, idcard), command or agent.
	Source string `json:"source"`
	// Gate is what the barrier did for the event: opened, held_open, released, not_opened,
	// no_barrier.
	Gate string `json:"gate,omitempty"`
	// Detail says why (the driver's error for reader_offline, a fallback for mode_restored);
	// never personal data.
	Detail string `json:"detail,omitempty"`
	// Mode is the gate mode in force after a mode_restored event.
	Mode string `json:"mode,omitempty"`
	// Command is the command's reply, for a command event.
	Command *CommandReply `json:"command,omitempty"`
	// Lost counts events dropped before this one: the recorder was full or stopped, or the
	// database refused them.
	Lost int64 `json:"lost,omitempty"`
	// Suppressed counts command refusals not recorded since the last recorded one (the
	// refusal rate limit); every refusal is still counted in sentinel_commands_total.
	Suppressed int `json:"suppressed,omitempty"`

	at time.Time
}

// DeviceEvent is the older name of Event.
type DeviceEvent = Event

// eventQueueSize bounds the events waiting for the outbox; past it events are dropped and
// counted (the relay never waits for the recorder).
var eventQueueSize = 256

// storeTimeout bounds one append, so a hung database cannot stall the recorder forever.
var storeTimeout = 5 * time.Second

// errNoOutbox is a store without an outbox (a daemon that has none).
var errNoOutbox = errors.New("agent: no outbox")

// eventRecorder appends events to the outbox on its own goroutine, so that a slow or
// failing database never delays the relay or a command: callers act first and record
// after, and Emit never blocks.
type eventRecorder struct {
	ob            Outbox
	topic         string
	device, venue string
	log           *slog.Logger
	clock         func() string

	ch chan Event
	// dropped is carried into the next stored event's lost; lostTotal only grows (metrics).
	dropped, stored, failed, lostTotal atomic.Int64
	// stopped is set, under stopMu held for writing, when Run begins its final drain; Emit
	// checks it and queues under stopMu held for reading, so nothing is queued after the
	// drain began (it would be neither stored nor counted).
	stopped atomic.Bool
	stopMu  sync.RWMutex
	mu      sync.Mutex
	burst   bool // a run of drops was logged
}

// newEventRecorder returns a recorder of the events of device at venue onto ob. Run must
// run for events to be stored.
func newEventRecorder(ob Outbox, topic, device, venue string, log *slog.Logger) *eventRecorder {
	if log == nil {
		log = slog.Default()
	}
	return &eventRecorder{ob: ob, topic: topic, device: device, venue: venue, log: log, clock: ClockState, ch: make(chan Event, eventQueueSize)}
}

// Emit queues ev without blocking. A full queue (or a stopped recorder) drops the event and
// counts it; the next stored event carries the count in lost.
func (r *eventRecorder) Emit(ev Event) {
	if ev.at.IsZero() {
		ev.at = time.Now()
	}
	r.stopMu.RLock()
	if !r.stopped.Load() {
		select {
		case r.ch <- ev:
			r.stopMu.RUnlock()
			r.mu.Lock()
			r.burst = false
			r.mu.Unlock()
			return
		default:
		}
	}
	r.stopMu.RUnlock()
	n := r.dropped.Add(1)
	r.lostTotal.Add(1)
	r.mu.Lock()
	first := !r.burst
	r.burst = true
	r.mu.Unlock()
	if first {
		r.log.Error("event recorder full or stopped; dropping events (counted)", "type", ev.Type, "dropped", n)
	}
}

// Run stores queued events until ctx ends, then stores what is still queued. Events emitted
// after it returned are dropped and counted.
func (r *eventRecorder) Run(ctx context.Context) error {
	defer r.stop() // also when ctx had ended before Run began
	for {
		select {
		case ev := <-r.ch:
			r.store(ctx, ev)
		case <-ctx.Done():
			r.stop()
			for {
				select {
				case ev := <-r.ch:
					r.store(ctx, ev)
				default:
					return nil
				}
			}
		}
	}
}

// stop makes Emit drop and count from now on; what was queued before stays for the drain.
func (r *eventRecorder) stop() {
	r.stopMu.Lock()
	r.stopped.Store(true)
	r.stopMu.Unlock()
}

func (r *eventRecorder) store(ctx context.Context, ev Event) {
	ev.TS = ev.at.UTC().Format(tsLayout)
	ev.Device, ev.Venue, ev.Clock = r.device, r.venue, r.clock()
	lost := r.dropped.Swap(0)
	ev.Lost = lost
	err := errNoOutbox
	if r.ob != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		_, err = r.ob.AppendID(sctx, StreamEvent, r.topic, "", func(seq int64, id string) ([]byte, error) {
			ev.ID, ev.Seq = id, seq
			return json.Marshal(ev)
		})
		cancel()
	}
	if err != nil {
		r.dropped.Add(lost + 1) // carried by the next event that is stored
		r.failed.Add(1)
		r.lostTotal.Add(1)
		r.log.Error("event NOT stored", "type", ev.Type, "source", ev.Source, "err", err)
		return
	}
	r.stored.Add(1)
}

// RecordEvent records ev on the daemon's event stream without blocking: the recorder fills
// the id, sequence, time, unit and clock. Parts and drivers call it after they acted.
func (d *Daemon) RecordEvent(ev Event) { d.ops().events.Emit(ev) }

// eventEmitter returns the daemon's recorder for a part that records events from its own
// goroutines until its run returns, and done, which the part must call when its run
// returned (or when its Setup fails after this call): at shutdown the recorder stores what
// is queued once every such part is done, or after emitterWait.
func (d *Daemon) eventEmitter() (*eventRecorder, func()) {
	st := d.ops()
	st.emitters.Add(1)
	var once sync.Once
	return st.events, func() { once.Do(st.emitters.Done) }
}

// emitterWait bounds how long shutdown waits for the parts that record events: a part
// that never says done must not hang the daemon (its later events are counted as lost).
var emitterWait = 5 * time.Second

// waitEmitters waits for the emitters, at most emitterWait; it reports whether they all
// finished.
func (st *opsState) waitEmitters() bool {
	done := make(chan struct{})
	go func() { st.emitters.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(emitterWait):
		return false
	}
}
