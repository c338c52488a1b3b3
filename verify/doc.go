// Package verify decides a passage: it asks the city's verification platform about a
// credential over the docking interface (docs/docking-spec.md), applies the venue policy to the
// answer, and falls back to the offline policy when the platform does not answer within its
// budget. The decision never waits longer than the configured timeout.
//
// Every reason a passage is allowed or denied is a stable, documented code (see Reasons).
package verify
