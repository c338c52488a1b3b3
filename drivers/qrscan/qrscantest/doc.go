// Package qrscantest is a fake QR scanner: tests push scans into its channel.
package qrscantest
