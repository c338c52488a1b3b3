package clock

import "time"

// States of the wall clock, as records carry them (the clock field).
const (
	Synced   = "synced"   // the kernel says NTP (or an RTC discipline) confirmed the time
	Unsynced = "unsynced" // not confirmed, or a date before MinTrustedYear
)

// MinTrustedYear: a wall clock before it is wrong whatever the kernel says (a unit that
// booted at 1970 without an RTC battery).
const MinTrustedYear = 2024

// OS seams; this package's tests swap them. Other packages take the clock as a function
// (State, or a fake) in their options.
var (
	// kernelSynced asks the kernel whether the clock is synchronised (adjtimex(2) on Linux).
	kernelSynced = kernelClockSynced
	// wallNow is the wall clock the year check reads.
	wallNow = time.Now
)

// State says whether the wall clock can be trusted now: Synced when the kernel's STA_UNSYNC
// flag is clear (ntpd, chrony or systemd-timesyncd cleared it) and the year is at least
// MinTrustedYear; Unsynced otherwise.
func State() string {
	if wallNow().Year() < MinTrustedYear || !kernelSynced() {
		return Unsynced
	}
	return Synced
}

// Trusted says whether State is Synced.
func Trusted() bool { return State() == Synced }
