package qrscan

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// counters are what every scanner driver counts; Stats reads them.
type counters struct {
	scans, overlong, garbage, partial, reopens, duplicates atomic.Int64
	up                                                     atomic.Bool
}

func (c *counters) stats() Stats {
	return Stats{c.scans.Load(), c.overlong.Load(), c.garbage.Load(), c.partial.Load(), c.reopens.Load(), c.duplicates.Load(), c.up.Load()}
}

// lineStream turns the text a scanner typed into scans, for every driver alike: it splits
// lines, drops duplicates within the window, drops a partial line after an idle gap, counts
// every drop, and logs bad lines once per burst, not per line.
type lineStream struct {
	sp      Splitter
	dup     Dedup
	c       *counters
	log     *slog.Logger
	partial string // what the log says of a partial line ("no line end", "no Enter")
	last    time.Time
	dropped int64
}

func newLineStream(maxLen int, window time.Duration, c *counters, log *slog.Logger, partial string) *lineStream {
	return &lineStream{sp: Splitter{Max: maxLen}, dup: Dedup{Window: window}, c: c, log: log, partial: partial}
}

// feed takes text read at now and emits each complete, new line.
func (l *lineStream) feed(b []byte, now time.Time, emit func(Scan)) {
	l.last = now
	beforeO, beforeG := l.sp.Overlong, l.sp.Garbage
	for _, line := range l.sp.Feed(b) {
		if !l.dup.Allow(line, now) {
			l.c.duplicates.Add(1)
			continue
		}
		l.c.scans.Add(1)
		emit(Scan{Token: line, At: now})
	}
	l.c.overlong.Add(int64(l.sp.Overlong - beforeO))
	l.c.garbage.Add(int64(l.sp.Garbage - beforeG))
}

// idle is called when a read brought nothing: a partial line older than idleGap is dropped,
// and the bad lines of the burst just ended are logged.
func (l *lineStream) idle(now time.Time) {
	if l.sp.Pending() && now.Sub(l.last) > idleGap && l.sp.Reset() {
		l.c.partial.Add(1)
		l.log.Warn("dropped a partial scan with " + l.partial)
	}
	if d := int64(l.sp.Overlong + l.sp.Garbage); d > l.dropped {
		l.log.Warn("dropped bad scan lines", "overlong", l.sp.Overlong, "garbage", l.sp.Garbage)
		l.dropped = d
	}
}
