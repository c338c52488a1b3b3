// Package drivers is the root of Sentinel's hardware drivers. Each kind of device has its own
// package below (qrscan, idcard, relay, inputs, camera), a fake in a sibling *test package
// (inputs use periph's gpiotest.Pin), and, for serial devices, a simulator in sentinel-sim
// that speaks the device's real byte protocol. docs/drivers.md describes wiring and events.
//
// This package holds what the drivers share: opening a serial port, finding a GPIO line, and
// the errors that map third-party failures.
package drivers
