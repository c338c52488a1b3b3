package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Device event types, published on <prefix>/<venue>/<device>/event (docs/drivers.md).
const (
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
)

// streamDeviceEvent is the outbox stream of device events: the same "event" stream (and
// topic) as the operational events of ops_commands.go.
const streamDeviceEvent = "event"

// DeviceEvent is a record of something a device did or saw. It holds no personal data.
type DeviceEvent struct {
	ID     string `json:"id"`
	Seq    int64  `json:"seq"`
	TS     string `json:"ts"`
	Device string `json:"device"`
	Venue  string `json:"venue"`
	Clock  string `json:"clock"`
	Type   string `json:"type"`
	// Source names the device: an input (exit_button, door_sensor, fire_alarm, tamper) or a
	// reader (qr, idcard).
	Source string `json:"source"`
	// Gate is what the barrier did for the event: opened, held_open, released, not_opened.
	Gate string `json:"gate,omitempty"`
	// Detail says why, for reader_offline (the driver's error; never personal data).
	Detail string `json:"detail,omitempty"`
	// Lost counts device events dropped before this one because the recorder was full.
	Lost int64 `json:"lost,omitempty"`

	at time.Time
}

// eventQueueSize bounds the events waiting for the outbox; past it events are dropped and
// counted (the relay never waits for the recorder).
var eventQueueSize = 256

// eventRecorder appends device events to the outbox on its own goroutine, so that a slow or
// failing database never delays the relay: callers act first and record after, and Emit
// never blocks.
type eventRecorder struct {
	ob            Outbox
	topic         string
	device, venue string
	log           *slog.Logger
	clock         func() string

	ch                      chan DeviceEvent
	dropped, stored, failed atomic.Int64
	mu                      sync.Mutex
	burst                   bool // a run of drops was logged
}

func newEventRecorder(ob Outbox, topic, device, venue string, log *slog.Logger) *eventRecorder {
	return &eventRecorder{ob: ob, topic: topic, device: device, venue: venue, log: log, clock: ClockState, ch: make(chan DeviceEvent, eventQueueSize)}
}

// Emit queues ev without blocking. A full queue drops the event and counts it; the next
// stored event carries the count.
func (r *eventRecorder) Emit(ev DeviceEvent) {
	ev.at = time.Now()
	select {
	case r.ch <- ev:
		r.mu.Lock()
		r.burst = false
		r.mu.Unlock()
	default:
		n := r.dropped.Add(1)
		r.mu.Lock()
		first := !r.burst
		r.burst = true
		r.mu.Unlock()
		if first {
			r.log.Error("device event recorder full; dropping events (counted)", "type", ev.Type, "dropped_total", n)
		}
	}
}

// Run stores queued events until ctx ends, then stores what is still queued.
func (r *eventRecorder) Run(ctx context.Context) error {
	for {
		select {
		case ev := <-r.ch:
			r.store(ctx, ev)
		case <-ctx.Done():
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

// storeTimeout bounds one append, so a hung database cannot stall the recorder forever.
var storeTimeout = 5 * time.Second

func (r *eventRecorder) store(ctx context.Context, ev DeviceEvent) {
	ev.TS = ev.at.UTC().Format(tsLayout)
	ev.Device, ev.Venue, ev.Clock = r.device, r.venue, r.clock()
	lost := r.dropped.Swap(0)
	ev.Lost = lost
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	_, err := r.ob.AppendID(sctx, streamDeviceEvent, r.topic, "", func(seq int64, id string) ([]byte, error) {
		ev.ID, ev.Seq = id, seq
		return json.Marshal(ev)
	})
	if err != nil {
		r.dropped.Add(lost + 1) // carried by the next event that is stored
		r.failed.Add(1)
		r.log.Error("device event NOT stored", "type", ev.Type, "source", ev.Source, "err", err)
		return
	}
	r.stored.Add(1)
}
