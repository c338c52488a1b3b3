// Package scanner simulates a serial QR-code scanner: it writes one token
// per scan, followed by the configured end-of-line bytes, to a serial port,
// at a bounded rate.
//
// The port is either an existing character device or, on Linux, a fresh
// pseudo-terminal whose slave side is reached through a symlink, so the
// agent's real serial driver (go.bug.st/serial) can open it as if it were
// /dev/ttyUSB0. The simulator keeps its own descriptor of the slave open in
// raw mode for its whole life: the line discipline then never hangs up and
// never cooks the bytes when the reader closes and reopens the port.
//
// Bytes written while no reader has the port open wait in the pty's input
// queue (a few KiB) and reach the next reader; when the queue is full a
// Write blocks until the reader takes bytes or the Port is closed.
//
// Tokens are personal data: they are logged only masked.
package scanner
