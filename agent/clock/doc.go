// Package clock says whether the unit's wall clock can be trusted: every record carries the
// answer (clock: synced | unsynced), signed commands are refused while it is "before 2024",
// and while it is not trusted the verifier measures the nucleic-acid age against the
// platform's clock. Timeouts and durations never depend on it: they use Go's monotonic clock.
package clock
