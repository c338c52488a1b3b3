// Package agent is Sentinel's passage pipeline and daemon lifecycle: the one package that
// wires drivers, verify and queue together. A scan becomes a credential, the verifier decides,
// the passage record is committed to the outbox, and only then does the barrier move; the
// uplink carries records upstream.
//
// Start-up drives every output to its safe state before anything else; shutdown stops the
// readers, finishes the decision in flight, halts the relay, gives the uplink a moment to
// flush, and closes the database.
package agent
