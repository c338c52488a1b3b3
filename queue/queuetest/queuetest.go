package queuetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sentinel-edge/sentinel/queue"
)

// Outbox stores appended records in memory. The zero value is not usable; call New.
type Outbox struct {
	// Fail, when set, is asked before each append: a non-nil error refuses it, as a full or
	// failing outbox would. Set it before the first append or under Lock.
	Fail func(stream string) error
	// Hold, when set, makes each append wait until it is closed (or the context ends): a hung
	// database.
	Hold chan struct{}

	mu      sync.Mutex
	entries []queue.Entry
	seqs    map[string]int64
	added   chan struct{}
}

// New returns an empty outbox.
func New() *Outbox {
	return &Outbox{seqs: map[string]int64{}, added: make(chan struct{}, 1)}
}

// AppendID stores one record like queue.Outbox.AppendID: the next seq of stream, id (a new
// UUID when empty), and the payload build makes of them.
func (o *Outbox) AppendID(ctx context.Context, stream, topic, id string, build func(seq int64, id string) ([]byte, error)) (queue.Entry, error) {
	if h := o.hold(); h != nil {
		select {
		case <-h:
		case <-ctx.Done():
			return queue.Entry{}, fmt.Errorf("queuetest: append %s: %w", stream, ctx.Err())
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.Fail != nil {
		if err := o.Fail(stream); err != nil {
			return queue.Entry{}, err
		}
	}
	if id == "" {
		id = uuid.NewString()
	}
	seq := o.seqs[stream] + 1
	b, err := build(seq, id)
	if err != nil {
		return queue.Entry{}, err
	}
	o.seqs[stream] = seq
	e := queue.Entry{ID: id, Stream: stream, Topic: topic, Seq: seq, Payload: b, CreatedAt: time.Now()}
	o.entries = append(o.entries, e)
	select {
	case o.added <- struct{}{}:
	default:
	}
	return e, nil
}

func (o *Outbox) hold() chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.Hold
}

// SetFail replaces Fail while appends may run.
func (o *Outbox) SetFail(f func(stream string) error) {
	o.mu.Lock()
	o.Fail = f
	o.mu.Unlock()
}

// Entries returns the records of stream ("" for every stream), in the order stored.
func (o *Outbox) Entries(stream string) []queue.Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	var es []queue.Entry
	for _, e := range o.entries {
		if stream == "" || e.Stream == stream {
			es = append(es, e)
		}
	}
	return es
}

// Wait returns the first n records of stream ("" for every stream) once they are stored, or
// fails the test after within.
func (o *Outbox) Wait(t testing.TB, stream string, n int, within time.Duration) []queue.Entry {
	t.Helper()
	deadline := time.After(within)
	for {
		if es := o.Entries(stream); len(es) >= n {
			return slices.Clone(es[:n])
		}
		select {
		case <-o.added:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("queuetest: %d records of stream %q stored within %s, want %d", len(o.Entries(stream)), stream, within, n)
		}
	}
}

// Stats counts the stored records as pending.
func (o *Outbox) Stats(context.Context) (queue.Stats, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return queue.Stats{Pending: int64(len(o.entries)), Records: int64(len(o.entries))}, nil
}
