package events

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentinel-edge/sentinel/agent/clock"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/queue"
)

// Store keeps records durably; queue.Outbox is one.
type Store interface {
	AppendID(ctx context.Context, stream, topic, id string, build func(seq int64, id string) ([]byte, error)) (queue.Entry, error)
}

// Options configure a Recorder.
type Options struct {
	Unit record.Unit // whose events they are: device, venue and topic
	// QueueSize bounds the events waiting for the store; past it events are dropped and
	// counted (the relay never waits for the recorder). 0 means 256.
	QueueSize int
	// StoreTimeout bounds one append, so that a hung database cannot stall the recorder for
	// ever. 0 means 5s.
	StoreTimeout time.Duration
	// Clock says whether the wall clock is trusted when an event is stored; nil means
	// clock.State.
	Clock func() string
	Log   *slog.Logger
}

// Recorder appends events to a store on its own goroutine (Run). It is safe for concurrent
// use.
type Recorder struct {
	db    Store
	unit  record.Unit
	topic string
	opt   Options

	ch chan stamped
	// dropped is carried into the next stored event's lost; lost only grows.
	dropped, stored, failed, lost atomic.Int64
	// stopped is set, under stopMu held for writing, when Run begins its final drain; Emit
	// checks it and queues under stopMu held for reading, so that nothing is queued after the
	// drain began (it would be neither stored nor counted).
	stopped atomic.Bool
	stopMu  sync.RWMutex
	mu      sync.Mutex
	burst   bool // a run of drops was logged
}

// stamped is an event and when it was emitted.
type stamped struct {
	ev record.Event
	at time.Time
}

// New returns a recorder of events onto store. Run must run for events to be stored.
func New(store Store, opt Options) *Recorder {
	if opt.QueueSize <= 0 {
		opt.QueueSize = 256
	}
	if opt.StoreTimeout <= 0 {
		opt.StoreTimeout = 5 * time.Second
	}
	if opt.Clock == nil {
		opt.Clock = clock.State
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	return &Recorder{db: store, unit: opt.Unit, topic: opt.Unit.Topic(record.StreamEvent), opt: opt, ch: make(chan stamped, opt.QueueSize)}
}

// Emit queues ev without blocking; the recorder fills its id, seq, ts, device, venue and
// clock. A full queue (or a stopped recorder) drops the event and counts it; the next stored
// event carries the count in lost.
func (r *Recorder) Emit(ev record.Event) {
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
	r.lost.Add(1)
	r.mu.Lock()
	first := !r.burst
	r.burst = true
	r.mu.Unlock()
	if first {
		r.opt.Log.Error("event recorder full or stopped; dropping events (counted)", "type", ev.Type, "dropped", n)
	}
}

// Run stores queued events until ctx ends, then stores what is still queued and returns.
// Events emitted after that are dropped and counted.
func (r *Recorder) Run(ctx context.Context) error {
	defer r.stop() // also when ctx had ended before Run began
	for {
		select {
		case st := <-r.ch:
			r.store(ctx, st)
		case <-ctx.Done():
			r.stop()
			for {
				select {
				case st := <-r.ch:
					r.store(ctx, st)
				default:
					return nil
				}
			}
		}
	}
}

// stop makes Emit drop and count from now on; what was queued before stays for the drain.
func (r *Recorder) stop() {
	r.stopMu.Lock()
	r.stopped.Store(true)
	r.stopMu.Unlock()
}

func (r *Recorder) store(ctx context.Context, st stamped) {
	ev := st.ev
	ev.TS = record.TS(st.at)
	ev.Device, ev.Venue, ev.Clock = r.unit.Device, r.unit.Venue, r.opt.Clock()
	lost := r.dropped.Swap(0)
	ev.Lost = lost
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opt.StoreTimeout)
	_, err := r.db.AppendID(sctx, record.StreamEvent, r.topic, "", func(seq int64, id string) ([]byte, error) {
		ev.ID, ev.Seq = id, seq
		return json.Marshal(ev)
	})
	cancel()
	if err != nil {
		r.dropped.Add(lost + 1) // carried by the next event that is stored
		r.failed.Add(1)
		r.lost.Add(1)
		r.opt.Log.Error("event NOT stored", "type", ev.Type, "source", ev.Source, "err", err)
		return
	}
	r.stored.Add(1)
}

// Stats counts what the recorder did since it was made.
type Stats struct {
	Stored int64 // events in the store
	Failed int64 // appends the store refused
	Lost   int64 // events dropped or refused: neither stored nor to be stored
}

// Stats returns the counters.
func (r *Recorder) Stats() Stats {
	return Stats{Stored: r.stored.Load(), Failed: r.failed.Load(), Lost: r.lost.Load()}
}
