// Package selftest is the commissioning self-test (sentinel selftest): every check runs
// against the real devices and services the config names, built through agent/open exactly
// as the daemon builds them, and says what it found and, when it failed, what to do. Live is
// the subset a running daemon runs for the remote selftest command: it claims no device.
package selftest
