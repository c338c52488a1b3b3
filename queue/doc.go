// Package queue is the agent's durable outbox and its MQTT uplink.
//
// Outbox is an SQLite database (WAL, synchronous=FULL by default) and the single source of
// truth for events that must reach the back office. Append gives each record the next
// sequence number of its stream and a UUID, and returns only after the row is committed;
// concurrent appends are group-committed by one writer goroutine, so many callers share one
// fsync without giving up durability. A record is marked delivered only after the broker
// acknowledged it.
//
// Uplink publishes pending records in insertion order at QoS 1 over its own connection to
// the first reachable broker, marks them delivered when their PUBACK arrives and, on any
// failure, reconnects with full-jitter backoff and resends from the first record not yet
// acknowledged: delivery is at least once, first deliveries are in order and without gaps.
package queue
