package backoff

import (
	"math/rand/v2"
	"time"
)

// FullJitter is full-jitter exponential backoff: the delay before attempt n (from 0) is
// uniform in [0, min(Cap, Base·2ⁿ)].
type FullJitter struct {
	Base, Cap time.Duration
}

// Delay returns the delay before the given attempt.
func (b FullJitter) Delay(attempt int) time.Duration {
	limit := b.Cap
	if attempt < 32 {
		if d := b.Base << attempt; d > 0 && d < limit {
			limit = d
		}
	}
	if limit <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(limit) + 1))
}
