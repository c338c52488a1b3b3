// Package record holds what a unit writes for others to read: the records it stores in its
// outbox and publishes (passages, audit rows, alerts, events), its retained status, the
// remote commands it accepts and their replies, and the topics they travel on. Their field
// names and values are a contract (README "Record format", docs/events.md,
// docs/operations.md, docs/docking-spec.md): add fields, never rename them.
//
// It imports nothing of Sentinel's, so that every part of the agent, the command-line tools
// and the tests can share these types without pulling in the rest.
package record
