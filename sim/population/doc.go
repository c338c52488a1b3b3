// Package population is the reference platform's view of the people it knows:
// the population CSV of docs/docking-spec.md, its strict parser, a synthetic
// generator with valid GB 11643-1999 citizen ID numbers, and the masking used
// wherever a piece of personal data could reach a log, an error or a test
// failure message.
//
// It exists for sentinel-sim and for tests; nothing in the agent imports it.
package population
