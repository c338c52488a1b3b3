// Package events records what happens at a lane that is not a passage — the exit button, the
// door, the fire alarm, tamper, readers going offline, remote commands, the gate mode restored
// at start — as one record type (record.Event) on one outbox stream, "event", through one
// path: a Recorder whose Emit never blocks, so that a slow or failing database never delays
// the relay or a command. Callers act first and record after (docs/events.md).
package events
