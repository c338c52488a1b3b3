// Package agent runs one unit: wire.go builds it from its config, in the order its parts
// start, and Run runs them and stops them in reverse order. It is the one package that
// imports drivers, verify and queue together; each part lives in a sub-package of its own
// (pipeline, lane, audit, ops, selftest, ...) and imports only downward.
//
// Start-up drives the barrier relay to its safe state before anything else; shutdown stops
// the readers and finishes the decision in flight, drains the audit and the events, says
// goodbye on the status, halts the relay, gives the uplink a moment to deliver what is
// pending, and closes the database (docs/architecture.md).
package agent
