package agent

import "time"

// Clock states carried by every record's clock field.
const (
	ClockSynced   = "synced"   // the kernel says NTP (or an RTC discipline) confirmed the time
	ClockUnsynced = "unsynced" // not confirmed, or a date before minTrustedYear
)

// minTrustedYear: a wall clock before it is wrong whatever the kernel says (a unit that
// booted at 1970 without an RTC battery).
const minTrustedYear = 2024

// Clock seams; tests swap them.
var (
	// kernelSynced asks the kernel whether the clock is synchronised (adjtimex(2) on Linux).
	kernelSynced = kernelClockSynced
	// wallNow is the wall clock the year check reads.
	wallNow = time.Now
)

// ClockState says whether the wall clock can be trusted now: "synced" when the kernel's
// STA_UNSYNC flag is clear (ntpd, chrony or systemd-timesyncd cleared it) and the year is at
// least 2024; "unsynced" otherwise. Timeouts and durations never depend on it: they use Go's
// monotonic clock.
func ClockState() string {
	if wallNow().Year() < minTrustedYear || !kernelSynced() {
		return ClockUnsynced
	}
	return ClockSynced
}

func (p *Pipeline) clock() string {
	if p.Clock != nil {
		return p.Clock()
	}
	return ClockState()
}
