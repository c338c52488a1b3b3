// Package relaytest is a fake barrier relay that records its pulses, holds and releases.
package relaytest
