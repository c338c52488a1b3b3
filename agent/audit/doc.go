// Package audit keeps the call audit the city asks for (调用日志): one row per request made
// to the platform, stored in the outbox on stream "audit" and published like passages; and
// the re-checks of passages that platform.offline_policy: allow_and_flag admitted while the
// platform was out of reach, with the alerts of those that fail or can never happen. It also
// builds the self-check report of the audit (sentinel report calls).
//
// Rows are stored off the decision loop: the pipeline only queues them, so a slow disk never
// delays a passage; what cannot be stored is counted and carried in the next row's lost.
// Pending re-checks live in memory only (no raw credential on disk): a run that ends without
// settling them is found out at the next start, and each is alerted as abandoned.
package audit
