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

// stamped is an event and when it was emitted.
type stamped struct {
	ev Event
	at time.Time
}

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

	ch chan stamped
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
	return &eventRecorder{ob: ob, topic: topic, device: device, venue: venue, log: log, clock: clockState, ch: make(chan stamped, eventQueueSize)}
}

// Emit queues ev without blocking. A full queue (or a stopped recorder) drops the event and
// counts it; the next stored event carries the count in lost.
func (r *eventRecorder) Emit(ev Event) {
	st := stamped{ev, time.Now()}
	r.stopMu.RLock()
	if !r.stopped.Load() {
		select {
		case r.ch <- st:
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

func (r *eventRecorder) store(ctx context.Context, st stamped) {
	ev := st.ev
	ev.TS = st.at.UTC().Format(tsLayout)
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
