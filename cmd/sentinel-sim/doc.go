// Command sentinel-sim is the reference simulator of Sentinel's outside
// world: the verification platform (api), a serial QR scanner (scan), an
// MQTT broker (broker), and the synthetic population they share
// (population). Run `sentinel-sim help` for usage.
package main
