// Package chaintest plays a unit as the agent publishes: chained records per stream,
// statuses with signed heads, queue_loss notices, as captured messages, so that verifier
// tests can make clean captures and tamper with them.
package chaintest
