package config

import (
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/backoff"
)

// busiestSecond simulates one broker outage of a fleet reconnecting with b: every unit
// loses its connection within the first half second, retries (refused) until the broker is
// back, and the first try after that is counted in its second. It returns the most tries
// in one second.
func busiestSecond(b backoff.FullJitter, units int, outage time.Duration, lost func() time.Duration) int {
	bins := map[int]int{}
	most := 0
	for range units {
		at := lost()
		for attempt := 0; at < outage; attempt++ {
			at += b.Delay(attempt)
		}
		s := int((at - outage) / time.Second)
		bins[s]++
		most = max(most, bins[s])
	}
	return most
}

// TestDefaultBackoffSpreadsAFleet keeps the default uplink backoff fit for a fleet on one
// broker (issue #15's target: after an outage, no 1 s window with more than 10 % of the
// fleet): 1,000 simulated 30 s outages of 100 units with the default base and cap, through
// backoff.FullJitter itself. At 60 s the busiest second averages ~7.5 % of the fleet and
// about one outage in forty goes above 10 %; the former 30 s cap gave 9.3 % and one in six,
// and fails here.
func TestDefaultBackoffSpreadsAFleet(t *testing.T) {
	b := backoff.FullJitter{Base: DefaultBackoffBase, Cap: DefaultBackoffCap}
	const units, outages = 100, 1000
	lost := func() time.Duration { return backoff.FullJitter{Base: time.Second / 2, Cap: time.Second / 2}.Delay(0) }
	total, over := 0, 0
	for range outages {
		m := busiestSecond(b, units, 30*time.Second, lost)
		total += m
		if m > units/10 {
			over++
		}
	}
	mean := float64(total) / outages / units * 100
	t.Logf("default backoff (base %s, cap %s): busiest second mean %.1f %% of %d units; %d of %d outages above 10 %%",
		DefaultBackoffBase, DefaultBackoffCap, mean, units, over, outages)
	if mean > 8.5 || over > outages/10 {
		t.Errorf("the default backoff brings a fleet back too bunched: busiest second mean %.1f %% (want <= 8.5), %d of %d outages above 10 %% (want <= %d)",
			mean, over, outages, outages/10)
	}
}
