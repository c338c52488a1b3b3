package idcard

import (
	"testing"
	"time"
)

// FastTiming shrinks the driver's timing for a test and restores it at cleanup.
func FastTiming(t testing.TB) {
	old := []time.Duration{readTimeout, cmdTimeout, pollEvery, statusEvery, backoffMin, backoffMax}
	readTimeout, cmdTimeout, pollEvery, statusEvery = 10*time.Millisecond, 300*time.Millisecond, 20*time.Millisecond, time.Second
	backoffMin, backoffMax = 20*time.Millisecond, time.Second
	t.Cleanup(func() {
		readTimeout, cmdTimeout, pollEvery, statusEvery, backoffMin, backoffMax = old[0], old[1], old[2], old[3], old[4], old[5]
	})
}
