package qrscan

import "time"

// Dedup suppresses a scan equal to the previous one within Window of it: a health code held
// in front of a scanner is read again and again, and each read would be a passage. The
// window restarts with every repeat, so a code held still is one passage however long it is
// held. It is not safe for concurrent use.
type Dedup struct {
	Window time.Duration // 0 lets every scan through

	last string
	at   time.Time
}

// Allow says whether tok, read at at, is a new scan.
func (d *Dedup) Allow(tok string, at time.Time) bool {
	if d.Window <= 0 {
		return true
	}
	dup := tok == d.last && !d.at.IsZero() && at.Sub(d.at) < d.Window
	d.last, d.at = tok, at
	return !dup
}
