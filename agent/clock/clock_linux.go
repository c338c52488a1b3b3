package clock

import "golang.org/x/sys/unix"

// kernelClockSynced reads adjtimex(2) without changing anything: the clock is synchronised
// when STA_UNSYNC is clear and the call does not report TIME_ERROR.
func kernelClockSynced() bool {
	var tx unix.Timex // modes 0: read only
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false
	}
	return tx.Status&unix.STA_UNSYNC == 0 && state != unix.TIME_ERROR
}
