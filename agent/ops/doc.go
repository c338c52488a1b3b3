// Package ops is what a unit tells people about itself and what it lets operators do: the
// retained status on <prefix>/<venue>/<device>/status (with a last will), the verdict screen
// on loopback, the Prometheus metrics on loopback, and Ed25519-signed remote commands (open,
// mode, reload, selftest) on a control connection of its own beside the record uplink
// (docs/operations.md). It is built from explicit dependencies — the lane, the outbox's
// stats, the uplink's state, the platform's ping, the event recorder — and changes none of
// them except through their own methods.
package ops
