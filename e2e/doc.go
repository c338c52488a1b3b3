// Package e2e holds the end-to-end tests: they run the built sentinel and sentinel-sim
// binaries as processes (SENTINEL_BIN_DIR, or a fresh build) against a real Mosquitto, real
// HTTP, pseudo-terminals and headless Chromium, and check what a user or the platform would
// see: records on the broker, the outbox on disk, logs, exit codes, the screen.
package e2e
