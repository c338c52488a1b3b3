// Package scale holds the harnesses that run the built binaries (bin/sentinel,
// bin/sentinel-sim) as processes at the sizes and faults a city meets, each behind its own
// make target:
//
//   - make soak: one agent under a steady scan load, killed with SIGKILL at random moments
//     (during a record's commit, during a drain, at start-up) and restarted SOAK_CYCLES
//     times, with Mosquitto restarted every 20th cycle; then every record is checked.
//   - make test-cluster: a three-node RabbitMQ cluster (Debian's rabbitmq-server and its
//     MQTT plugin, quorum queues); the node the agent is connected to is stopped ten times;
//     and the faults of a broker list: a node that never answers CONNECT, a node whose
//     PUBACKs are late, a dead first entry.
//   - make test-fleet: FLEET_SIZE agents (100) against one Mosquitto that stops for 30 s:
//     connection attempts per second, time until every unit is back, records lost, RSS, CPU.
//
// Each prints a summary line and "N passed, N failed" and fails on a correctness property
// (a record lost, a seq reused or missing, out of order, a damaged database, an ID number in
// plain text); speed figures are printed and recorded in docs/BENCHMARKS.md, not asserted.
// The tests skip unless SENTINEL_SCALE=1, so `go test ./...` passes over them at once.
package scale
