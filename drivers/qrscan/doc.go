// Package qrscan drives health-code QR scanners. Serial scanners send one scan per line, ended
// by CR, LF or CRLF; the driver splits lines, enforces a maximum length, drops garbage and
// partial lines (counting each), and reopens the port with backoff when it goes away.
//
// A scan holds a bearer credential: it is never logged, only its length.
package qrscan
