package queue

import (
	"math"
	"sync"
	"time"
)

// drainLimiter is two token buckets, messages and bytes, that pace the backlog drain. A
// bucket may go into debt by one entry, so an entry larger than a second's worth of bytes
// still passes, and the debt is paid before the next.
type drainLimiter struct {
	mu         sync.Mutex
	msgs, byts *bucket // nil: unbounded
}

func newDrainLimiter(msgsPerSec float64, bytesPerSec int64) *drainLimiter {
	l := &drainLimiter{}
	if msgsPerSec > 0 {
		l.msgs = newBucket(msgsPerSec)
	}
	if bytesPerSec > 0 {
		l.byts = newBucket(float64(bytesPerSec))
	}
	return l
}

// admit returns how many of entries (a prefix) may be sent at t, taking their tokens, and,
// when that is fewer than all, how long until the next one may go.
func (l *drainLimiter) admit(t time.Time, entries []Entry) (int, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.msgs == nil && l.byts == nil {
		return len(entries), 0
	}
	for i, e := range entries {
		var wait time.Duration
		for _, b := range []*bucket{l.msgs, l.byts} {
			if b != nil {
				wait = max(wait, b.waitFor(t))
			}
		}
		if wait > 0 {
			return i, wait
		}
		if l.msgs != nil {
			l.msgs.tokens--
		}
		if l.byts != nil {
			l.byts.tokens -= float64(len(e.Payload))
		}
	}
	return len(entries), 0
}

// burstShare is the share of one second's rate a bucket holds at most: a resumed drain starts
// with a burst of 100 ms worth, not a second's.
const burstShare = 0.1

// bucket holds up to max(1, rate*burstShare) tokens.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate float64) *bucket {
	burst := math.Max(1, rate*burstShare)
	return &bucket{rate: rate, burst: burst, tokens: burst}
}

// waitFor refills the bucket to t and returns how long until it holds a positive amount.
func (b *bucket) waitFor(t time.Time) time.Duration {
	if !b.last.IsZero() {
		if dt := t.Sub(b.last).Seconds(); dt > 0 {
			b.tokens = math.Min(b.burst, b.tokens+dt*b.rate)
		}
	}
	b.last = t
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - b.tokens) / b.rate * float64(time.Second)))
}
