//go:build !linux

package clock

// kernelClockSynced has no kernel to ask off Linux: only the year check applies.
func kernelClockSynced() bool { return true }
