package scale

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/queue"
)

// checks counts the harness's checks and prints "N passed, N failed" at the end. A failed
// check fails the test: only correctness properties are checks; speed figures are printed.
type checks struct {
	t              *testing.T
	passed, failed int
}

// check records one property; a failure is reported with its detail.
func (c *checks) check(name string, ok bool, format string, args ...any) {
	c.t.Helper()
	if ok {
		c.passed++
		return
	}
	c.failed++
	c.t.Errorf("FAILED %s: %s", name, fmt.Sprintf(format, args...))
}

// done prints the summary lines (plain, on stdout) and the counts.
func (c *checks) done(summary ...string) {
	for _, s := range summary {
		fmt.Println(s)
	}
	fmt.Printf("%d passed, %d failed\n", c.passed, c.failed)
}

// ledgerLine is the agent's log line for a passage the outbox acknowledged to the pipeline
// (logged after the commit): `msg=passage ... passage=<id> seq=<n>`.
var ledgerLine = regexp.MustCompile(`msg=passage .*passage=([0-9a-f-]{36}) seq=(\d+)`)

// ledger returns the passages the agent logged as stored, in log order.
func ledger(logs string) []rec {
	var out []rec
	for _, m := range ledgerLine.FindAllStringSubmatch(logs, -1) {
		seq, _ := strconv.ParseInt(m[2], 10, 64)
		out = append(out, rec{ID: m[1], Seq: seq, Stream: "passage"})
	}
	return out
}

// streamReport is what analyse found for one stream of one device.
type streamReport struct {
	stored, logged, distinct, copies int
	lost                             []string // stored or logged, never received
	reused                           []string // a seq carried by two ids
	gaps                             []string // seqs missing from 1..max
	segments                         int      // see orderSegments
}

// analyse checks one device's records: what its outbox holds (after the drain), what its log
// says was stored, and what the subscriber received. Per stream: nothing stored or logged is
// missing, no seq is carried by two ids (here or across restarts), the seqs received are
// 1..max without a gap, and the order of first arrivals is the documented one.
func analyse(device string, stored []queue.Entry, logged []rec, msgs []msg) map[string]*streamReport {
	reps := make(map[string]*streamReport)
	get := func(s string) *streamReport {
		if reps[s] == nil {
			reps[s] = &streamReport{}
		}
		return reps[s]
	}
	type key struct {
		stream string
		seq    int64
	}
	idOf := make(map[key]string)
	note := func(stream string, seq int64, id, where string) {
		k := key{stream, seq}
		if prev, ok := idOf[k]; ok && prev != id {
			r := get(stream)
			r.reused = append(r.reused, fmt.Sprintf("seq %d: %s and %s (%s)", seq, prev, id, where))
			return
		}
		idOf[k] = id
	}
	received := make(map[string]rec)
	firsts := make(map[string][]int64)
	for _, m := range msgs {
		r, ok := parseRecord(m)
		if !ok || r.Device != device {
			continue
		}
		get(r.Stream).copies++
		note(r.Stream, r.Seq, r.ID, "received")
		if _, dup := received[r.ID]; !dup {
			firsts[r.Stream] = append(firsts[r.Stream], r.Seq)
		}
		received[r.ID] = r
	}
	for _, e := range stored {
		get(e.Stream).stored++
		note(e.Stream, e.Seq, e.ID, "stored")
		if _, ok := received[e.ID]; !ok {
			get(e.Stream).lost = append(get(e.Stream).lost, fmt.Sprintf("stored seq %d id %s", e.Seq, e.ID))
		}
	}
	for _, l := range logged {
		get(l.Stream).logged++
		note(l.Stream, l.Seq, l.ID, "logged")
		if r, ok := received[l.ID]; !ok || r.Seq != l.Seq {
			get(l.Stream).lost = append(get(l.Stream).lost, fmt.Sprintf("logged seq %d id %s", l.Seq, l.ID))
		}
	}
	for stream, seqs := range firsts {
		r := get(stream)
		r.distinct = len(seqs)
		r.gaps = gaps(seqs)
		r.segments = orderSegments(seqs)
	}
	return reps
}

// gaps returns the seqs missing from 1..max(seqs), as ranges.
func gaps(seqs []int64) []string {
	sorted := append([]int64(nil), seqs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	var out []string
	next := int64(1)
	for _, s := range sorted {
		if s > next {
			out = append(out, fmt.Sprintf("%d-%d", next, s-1))
		}
		next = max(next, s+1)
	}
	return out
}

// orderSegments returns the least number of consecutive stretches the first arrivals of a
// stream split into such that each is a backlog overtaken by live records, as docs/queue.md
// promises per connection: a threshold H with the seqs <= H in increasing order and the seqs
// > H in increasing order. An inversion (x arrives before y, x > y) must then have y <= H < x:
// a stretch fits while the largest such y is below the smallest such x. The property holds
// for every part of a stretch, so the greedy cut is the least. The agent's uplink made at
// least that many connections, or the order is not the documented one.
func orderSegments(seqs []int64) int {
	if len(seqs) == 0 {
		return 0
	}
	segments := 1
	var seg []int64
	maxY, minX := int64(0), int64(1<<62)
	for _, s := range seqs {
		y, x := maxY, minX
		for _, p := range seg {
			if p > s {
				y = max(y, s)
				x = min(x, p)
			}
		}
		if y >= x {
			segments++
			seg, maxY, minX = nil, 0, 1<<62
			y, x = maxY, minX
		}
		seg = append(seg, s)
		maxY, minX = y, x
	}
	return segments
}

// idNumber finds an 18-character ID number: personal data that must never be in plain text.
var idNumber = regexp.MustCompile(`\b\d{17}[\dXx]\b`)

// plaintextIDs returns where an ID number appears in the named byte slices.
func plaintextIDs(named map[string][]byte) []string {
	var out []string
	for what, b := range named {
		if loc := idNumber.FindIndex(b); loc != nil {
			out = append(out, fmt.Sprintf("%s at byte %d (%s)", what, loc[0], privacy.MaskID(string(b[loc[0]:loc[1]]))))
		}
	}
	sort.Strings(out)
	return out
}

// files reads the named files that exist (a missing WAL is not an error).
func files(paths ...string) map[string][]byte {
	out := make(map[string][]byte)
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			out[p] = b
		}
	}
	return out
}

// firstFew returns at most n of ss, joined, with a count of the rest.
func firstFew(ss []string, n int) string {
	if len(ss) <= n {
		return strings.Join(ss, "; ")
	}
	return strings.Join(ss[:n], "; ") + fmt.Sprintf("; and %d more", len(ss)-n)
}

// unitResult is what verifyUnit found for one unit.
type unitResult struct {
	stored      []queue.Entry
	logged      []rec
	msgs        []msg
	reps        map[string]*streamReport
	connections int
	integrity   error
}

// verifyUnit checks a drained unit's records against the capture: the database's integrity,
// every stored or logged record arrived (waiting up to within), and per stream nothing lost,
// no seq reused, no gap, the documented order.
func verifyUnit(t *testing.T, c *checks, u *unit, sub *capture, within time.Duration) unitResult {
	t.Helper()
	var r unitResult
	r.stored, r.integrity = u.stored(t)
	c.check(u.id+": integrity_check", r.integrity == nil, "%v", r.integrity)
	want := make(map[string]bool, len(r.stored))
	for _, e := range r.stored {
		want[e.ID] = true
	}
	logs := u.logs()
	r.logged = ledger(logs)
	for _, l := range r.logged {
		want[l.ID] = true
	}
	missing := sub.waitFor(want, within)
	c.check(u.id+": every stored or logged record arrived", missing == 0, "%d of %d never arrived", missing, len(want))
	r.msgs = sub.messages()
	r.reps = analyse(u.id, r.stored, r.logged, r.msgs)
	r.connections = len(connectedLine.FindAllStringIndex(logs, -1))
	for stream, sr := range r.reps {
		name := u.id + " " + stream
		c.check(name+": nothing lost", len(sr.lost) == 0, "%d of %d stored (%d logged) never arrived: %s", len(sr.lost), sr.stored, sr.logged, firstFew(sr.lost, 5))
		c.check(name+": no seq reused", len(sr.reused) == 0, "%s", firstFew(sr.reused, 5))
		c.check(name+": no gap", len(sr.gaps) == 0, "missing seqs %s", firstFew(sr.gaps, 10))
		c.check(name+": documented order", sr.segments <= r.connections,
			"first arrivals need %d backlog/live stretches; the agent connected %d times", sr.segments, r.connections)
	}
	return r
}

// totals sums the streams' reports for a summary line.
func (r unitResult) totals() string {
	var distinct, copies, lost, reused, gapN int
	var streams []string
	for stream, sr := range r.reps {
		streams = append(streams, fmt.Sprintf("%s=%d", stream, sr.distinct))
		distinct += sr.distinct
		copies += sr.copies
		lost += len(sr.lost)
		reused += len(sr.reused)
		gapN += len(sr.gaps)
	}
	sort.Strings(streams)
	return fmt.Sprintf("records: stored=%d logged_passages=%d received=%d (%s) copies=%d lost=%d reused=%d gaps=%d integrity=%s",
		len(r.stored), len(r.logged), distinct, strings.Join(streams, " "), copies, lost, reused, gapN, okOr(r.integrity))
}

// okOr returns "ok" for nil and the error's text otherwise.
func okOr(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
