// Package queue is the agent's durable outbox and its MQTT uplink.
//
// Outbox is an SQLite database (WAL, synchronous=FULL by default) and the single source of
// truth for records that must reach the back office. Append gives each record the next
// sequence number of its stream and a UUID, and returns only after the row is committed;
// concurrent appends are group-committed by one writer goroutine, so many callers share one
// fsync without giving up durability. Payloads are stored compact (random strings such as a
// sealed box in binary, the rest DEFLATE with a fixed preset dictionary) and given back byte
// for byte. The outbox is bounded by records and bytes (SetCapacity): delivered
// records are purged after a retention, and first when it is full; when it is full of
// undelivered records the reject_new or drop_oldest policy applies, every loss is counted
// and reported upstream by a queue_loss notice. A record is marked delivered only after the
// broker acknowledged it.
//
// Uplink publishes pending records at QoS 1 over its own connection to the first reachable
// broker (failover in list order, TLS 1.2+, credentials), within a bounded sliding window,
// and marks them delivered as their PUBACKs arrive. On every connection what was pending is
// the backlog and what is appended later is live: live records go first, the event and alert
// streams ahead of the others, the backlog drains in insertion order at a configurable rate,
// so each class reaches the broker, the first time, in seq order per stream. On any failure it reconnects with full-jitter backoff and resends
// from the first record not acknowledged: delivery is at least once. docs/queue.md has the
// contract.
//
// Integrity: a process opens a database once, through one connection pool (a second Open
// of the path fails with ErrInUse; OpenReader in that process shares the pool), because
// closing any other descriptor of the file would drop the process's POSIX locks. Open checks
// an existing file read-only before anything writes (foreign, newer, damaged: refused
// untouched; PRAGMA quick_check within a budget, with a read of every page beside it), and
// compares it with a high-water mark kept in a file beside it: records lost behind the mark
// (a damaged WAL, an emptied or replaced file) are counted, logged at ERROR, reported in a
// queue_loss notice, and their seqs never used again. ScanEntries reads every record in one
// snapshot, skipping and counting damaged rows; Salvage copies every readable record of a
// damaged database into a new one.
//
// Reader reads an outbox read-only while the daemon writes it from another process
// (sentinel queue stats, ids, report calls).
package queue
