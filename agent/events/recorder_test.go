package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/clock"
	"github.com/sentinel-edge/sentinel/agent/events"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/queue/queuetest"
)

var unit = record.Unit{Prefix: "sentinel/v1", Venue: "350582-0001", Device: "gate-01"}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newRecorder(ob *queuetest.Outbox) *events.Recorder {
	return events.New(ob, events.Options{Unit: unit, Log: quiet(), Clock: func() string { return clock.Synced }})
}

func run(t *testing.T, r *events.Recorder) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	return func() { cancel(); <-done }
}

// The recorder fills the envelope; the caller's fields are kept.
func TestEnvelope(t *testing.T) {
	ob := queuetest.New()
	r := newRecorder(ob)
	stop := run(t, r)
	defer stop()
	r.Emit(record.Event{Type: record.EventDoorForcedOpen, Source: "door_sensor"})
	e := ob.Wait(t, record.StreamEvent, 1, 5*time.Second)[0]
	if e.Topic != "sentinel/v1/350582-0001/gate-01/event" {
		t.Errorf("topic %q", e.Topic)
	}
	var ev record.Event
	if err := json.Unmarshal(e.Payload, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ID != e.ID || ev.Seq != 1 || ev.Device != "gate-01" || ev.Venue != "350582-0001" || ev.Clock != clock.Synced ||
		ev.Type != record.EventDoorForcedOpen || ev.Source != "door_sensor" {
		t.Errorf("event %+v", ev)
	}
	if _, err := time.Parse(time.RFC3339Nano, ev.TS); err != nil {
		t.Errorf("ts %q: %v", ev.TS, err)
	}
}

// An event the store refused is counted, and carried in the next stored event's lost.
func TestRefusedEventCarriedInLost(t *testing.T) {
	ob := queuetest.New()
	fail := true
	var mu sync.Mutex
	ob.Fail = func(string) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("disk full")
		}
		return nil
	}
	r := newRecorder(ob)
	stop := run(t, r)
	defer stop()
	r.Emit(record.Event{Type: record.EventTamper, Source: "tamper"})
	deadline := time.Now().Add(5 * time.Second)
	for r.Stats().Failed == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the refused append was not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	r.Emit(record.Event{Type: record.EventTamperCleared, Source: "tamper"})
	var ev record.Event
	_ = json.Unmarshal(ob.Wait(t, record.StreamEvent, 1, 5*time.Second)[0].Payload, &ev)
	if ev.Lost != 1 || ev.Type != record.EventTamperCleared {
		t.Fatalf("event after a refusal %+v, want lost 1", ev)
	}
	// The store holds the event before the recorder counts it stored: wait for the count.
	for s := r.Stats(); s.Stored != 1; s = r.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := r.Stats(); s.Lost != 1 || s.Stored != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// Events emitted while the recorder stops are either stored or counted lost, never neither
// (run with -race).
func TestEmitRacesStop(t *testing.T) {
	for round := 0; round < 50; round++ {
		ob := queuetest.New()
		r := newRecorder(ob)
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() { _ = r.Run(ctx); close(ran) }()
		const emitters, each = 4, 50
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range emitters {
			wg.Go(func() {
				<-start
				for range each {
					r.Emit(record.Event{Type: record.EventExitButton, Source: "exit_button"})
				}
			})
		}
		close(start)
		cancel() // stop while they emit
		wg.Wait()
		<-ran
		n := int64(len(ob.Entries(record.StreamEvent)))
		if s := r.Stats(); n != s.Stored || s.Stored+s.Lost != emitters*each {
			t.Fatalf("round %d: %d stored (%d in the outbox), %d lost; want %d in all", round, s.Stored, n, s.Lost, emitters*each)
		}
	}
}

// After the recorder stopped, an event is dropped and counted, never left unseen; a full
// queue drops and counts too.
func TestAfterStopAndFull(t *testing.T) {
	ob := queuetest.New()
	r := events.New(ob, events.Options{Unit: unit, Log: quiet(), QueueSize: 1})
	r.Emit(record.Event{Type: record.EventTamper}) // queued
	r.Emit(record.Event{Type: record.EventTamper}) // full: dropped
	if s := r.Stats(); s.Lost != 1 {
		t.Fatalf("full queue: lost %d, want 1", s.Lost)
	}
	stop := run(t, r)
	ob.Wait(t, record.StreamEvent, 1, 5*time.Second)
	stop()
	r.Emit(record.Event{Type: record.EventTamper})
	if s := r.Stats(); s.Lost != 2 {
		t.Fatalf("after stop: lost %d, want 2", s.Lost)
	}
}

// Every event type is documented.
func TestEventTypesDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range record.EventTypes {
		if !strings.Contains(string(b), "`"+typ+"`") {
			t.Errorf("docs/events.md does not document type %s", typ)
		}
	}
}
