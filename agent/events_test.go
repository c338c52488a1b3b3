package agent

import (
	"context"
	"sync"
	"testing"
)

// TestEmitRacesStop: events emitted while the recorder stops are either stored or counted
// lost, never neither (run with -race).
func TestEmitRacesStop(t *testing.T) {
	for round := 0; round < 50; round++ {
		ob := newRawOutbox()
		ob.added = make(chan struct{}, 1<<16)
		r := newEventRecorder(ob, "s/v/d/event", "d", "v", quietLog())
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
					r.Emit(Event{Type: EventExitButton, Source: "exit_button"})
				}
			})
		}
		close(start)
		cancel() // stop while they emit
		wg.Wait()
		<-ran
		ob.mu.Lock()
		n := int64(len(ob.entries))
		ob.mu.Unlock()
		if n != r.stored.Load() || r.stored.Load()+r.lostTotal.Load() != emitters*each {
			t.Fatalf("round %d: %d stored (%d in the outbox), %d lost; want %d in all", round, r.stored.Load(), n, r.lostTotal.Load(), emitters*each)
		}
	}
}
