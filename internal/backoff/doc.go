// Package backoff computes reconnect delays: full-jitter exponential backoff with a cap, so
// that a fleet of units that lost their broker together does not come back together.
package backoff
