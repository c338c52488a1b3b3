package scale

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/mqtttest"
)

// fleetUsage sums the agents' resident memory and CPU time.
func fleetUsage(us []*unit) (usage, int) {
	var sum usage
	n := 0
	for _, u := range us {
		p := u.current()
		if p.exited() {
			continue
		}
		if x, err := procUsage(p.pid()); err == nil {
			sum.rssKB += x.rssKB
			sum.cpu += x.cpu
			n++
		}
	}
	return sum, n
}

// maxPerWindow returns the most times that fall within any window of length d.
func maxPerWindow(ts []time.Time, d time.Duration) int {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	best, lo := 0, 0
	for hi := range ts {
		for ts[hi].Sub(ts[lo]) >= d {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// backIn returns, over the units, the longest time from since to the first line matching
// the connected pattern at or after since, and how many units have none.
func backIn(us []*unit, since time.Time, connected func(string) bool) (time.Duration, int) {
	var worst time.Duration
	missing := 0
	for _, u := range us {
		found := false
		for _, l := range u.current().snapshot() {
			if at := logTime(l); !at.Before(since) && connected(l.text) {
				worst = max(worst, at.Sub(since))
				found = true
				break
			}
		}
		if !found {
			missing++
		}
	}
	return worst, missing
}

// TestFleet is make test-fleet: FLEET_SIZE agents (default 100), each with its own queue,
// pty scanner and client ids, scans spread over the fleet (50 a second in all), one
// Mosquitto behind a counting proxy. The broker stops for FLEET_OUTAGE_S (30) seconds and
// starts again. Measured: connection attempts per second seen by the broker (the uplink's
// and the control connection's, separately; target: no 1 s window with more than 10 % of
// the fleet), the time until every unit is back, the fleet's RSS and CPU. Checked: no
// record lost, no seq reused or missing, the documented order.
func TestFleet(t *testing.T) {
	requireScale(t)
	n := envInt(t, "FLEET_SIZE", 100)
	outage := time.Duration(envInt(t, "FLEET_OUTAGE_S", 30)) * time.Second
	// FLEET_BACKOFF_CAP_S sets every unit's uplink.backoff_cap (the control connection
	// follows it); unset keeps the default (30s).
	uplinkExtra := ""
	if c := envInt(t, "FLEET_BACKOFF_CAP_S", 0); c > 0 {
		uplinkExtra = fmt.Sprintf(", backoff_cap: %ds", c)
	}
	began := time.Now()
	broker := mqtttest.StartWith(t, mqtttest.Options{Persistence: true})
	proxy := mqtttest.StartProxy(t, "127.0.0.1:"+strconv.Itoa(broker.Port()))
	w := newWorld(t)
	sub := subscribe(t, []string{broker.URL()}, "platform-fleet", "sentinel/v1/"+venue+"/+/+")
	const totalRate = 50.0
	var us []*unit
	for i := range n {
		us = append(us, w.newUnit(t, fmt.Sprintf("fleet-%03d", i), totalRate/float64(n), unitConfig{brokers: []string{proxy.URL()}, uplink: uplinkExtra}))
	}
	startAt := time.Now()
	for i := 0; i < n; i += 10 { // ten at a time: two cores
		for _, u := range us[i:min(i+10, n)] {
			u.launch(t)
		}
		for _, u := range us[i:min(i+10, n)] {
			u.current().mustLine(t, pipelineUp, time.Minute)
		}
	}
	for _, u := range us {
		u.current().mustLine(t, connectedLine, time.Minute)
		u.current().mustLine(t, controlUp, time.Minute)
	}
	startTook := time.Since(startAt)
	time.Sleep(5 * time.Second) // settle
	u0, _ := fleetUsage(us)
	t0 := time.Now()
	time.Sleep(20 * time.Second)
	u1, running := fleetUsage(us)
	steadyCPU := float64(u1.cpu-u0.cpu) / float64(time.Since(t0)) * 100

	// The outage: the proxy stops listening (clients are refused, as by a stopped broker)
	// and the broker stops; then both come back.
	proxy.Stop()
	broker.Stop()
	time.Sleep(outage)
	broker.Start()
	upAt := time.Now()
	proxy.Start()
	b0, _ := fleetUsage(us)
	upBack, upMissing := waitBack(us, upAt, 3*time.Minute, func(s string) bool { return connectedLine.MatchString(s) })
	ctlBack, ctlMissing := waitBack(us, upAt, 3*time.Minute, func(s string) bool { return controlUp.MatchString(s) })
	b1, _ := fleetUsage(us)
	reconnectCPU := float64(b1.cpu-b0.cpu) / float64(time.Since(upAt)) * 100

	var upTimes, ctlTimes, all []time.Time
	for _, c := range proxy.Conns() {
		if c.At.Before(upAt) {
			continue
		}
		all = append(all, c.At)
		if strings.HasSuffix(c.ClientID, "-ctl") {
			ctlTimes = append(ctlTimes, c.At)
		} else if strings.HasPrefix(c.ClientID, "sentinel-") {
			upTimes = append(upTimes, c.At)
		}
	}
	upMax, ctlMax, allMax := maxPerWindow(upTimes, time.Second), maxPerWindow(ctlTimes, time.Second), maxPerWindow(all, time.Second)
	// The same from the agents' own clocks (the CONNACK's log line): a cross-check of the
	// proxy's accept times, which bunch when the test process is starved of CPU.
	var upLog, ctlLog []time.Time
	for _, u := range us {
		for _, l := range u.current().snapshot() {
			if at := logTime(l); !at.Before(upAt) && connectedLine.MatchString(l.text) {
				upLog = append(upLog, at)
			} else if !at.Before(upAt) && controlUp.MatchString(l.text) {
				ctlLog = append(ctlLog, at)
			}
		}
	}

	for _, u := range us {
		u.scanner.interrupt(5 * time.Second)
	}
	c := &checks{t: t}
	c.check("every uplink back", upMissing == 0, "%d units' uplinks did not reconnect within 3m", upMissing)
	c.check("every control connection back", ctlMissing == 0, "%d units' control connections did not reconnect within 3m", ctlMissing)
	var lost, reused, gapN, order, stored, received int
	for _, u := range us {
		u.waitDrained(t, 3*time.Minute)
		u.current().interrupt(20 * time.Second)
	}
	msgs := sub.messages()
	for _, u := range us {
		st, ierr := u.stored(t)
		c.check(u.id+": integrity_check", ierr == nil, "%v", ierr)
		logs := u.logs()
		reps := analyse(u.id, st, ledger(logs), msgs)
		conns := len(connectedLine.FindAllStringIndex(logs, -1))
		for _, r := range reps {
			lost += len(r.lost)
			reused += len(r.reused)
			gapN += len(r.gaps)
			if r.segments > conns {
				order++
			}
			stored += r.stored
			received += r.distinct
		}
	}
	c.check("no record lost", lost == 0, "%d records stored or logged never arrived", lost)
	c.check("no seq reused", reused == 0, "%d seqs carry two ids", reused)
	c.check("no gap", gapN == 0, "%d gaps", gapN)
	c.check("documented order", order == 0, "%d streams out of the documented order", order)
	pct := func(k int) string { return fmt.Sprintf("%d (%.0f%%)", k, float64(k)*100/float64(n)) }
	c.done(fmt.Sprintf("fleet: units=%d outage=%s start_all=%s | after the restart, attempts seen by the broker in the busiest 1 s: uplink=%s control=%s both=%s (target <=10%% of the fleet: uplink %v); CONNACKs in the busiest 1 s by the agents' clocks: uplink=%s control=%s | back: every uplink in %s, every control connection in %s | records: stored=%d received=%d lost=%d reused=%d gaps=%d order_violations=%d | rss: total=%d MB (%.1f MB per agent, %d agents) | cpu: steady=%.1f%% of one core (%.2f%% per agent), reconnect window=%.1f%% | took=%s",
		n, outage, startTook.Round(time.Second), pct(upMax), pct(ctlMax), pct(allMax), upMax*10 <= n,
		pct(maxPerWindow(upLog, time.Second)), pct(maxPerWindow(ctlLog, time.Second)),
		upBack.Round(100*time.Millisecond), ctlBack.Round(100*time.Millisecond), stored, received, lost, reused, gapN, order,
		u1.rssKB/1024, float64(u1.rssKB)/1024/float64(max(running, 1)), running, steadyCPU, steadyCPU/float64(max(running, 1)), reconnectCPU,
		time.Since(began).Round(time.Second)))
}

// waitBack waits until every unit logged a line matching connected after since (or within
// passes) and returns the longest time it took and how many units are missing.
func waitBack(us []*unit, since time.Time, within time.Duration, connected func(string) bool) (time.Duration, int) {
	deadline := time.Now().Add(within)
	for {
		worst, missing := backIn(us, since, connected)
		if missing == 0 || time.Now().After(deadline) {
			return worst, missing
		}
		time.Sleep(200 * time.Millisecond)
	}
}
