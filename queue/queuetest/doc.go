// Package queuetest has an in-memory stand-in for the outbox, for the tests of the parts
// that store records: it numbers each stream's records from 1 like the real outbox, keeps
// their payloads, and can refuse or stall appends on demand.
package queuetest
