package backoff

import (
	"testing"
	"time"
)

func TestFullJitterBounds(t *testing.T) {
	b := FullJitter{Base: 250 * time.Millisecond, Cap: 30 * time.Second}
	for attempt := range 40 {
		limit := b.Cap
		if attempt < 8 {
			limit = b.Base << attempt
		}
		var max time.Duration
		for range 200 {
			d := b.Delay(attempt)
			if d < 0 || d > limit {
				t.Fatalf("attempt %d: delay %s outside [0, %s]", attempt, d, limit)
			}
			max = maxDur(max, d)
		}
		if max < limit/4 {
			t.Errorf("attempt %d: 200 delays all below %s: not spread over [0, %s]", attempt, max, limit)
		}
	}
	if d := (FullJitter{}).Delay(3); d != 0 {
		t.Errorf("zero backoff gave %s", d)
	}
}

func maxDur(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}
