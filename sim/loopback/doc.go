// Package loopback decides whether a listen address stays on this machine.
// The simulators serve synthetic personal data and an open MQTT broker, so
// they refuse any other address unless the operator asks for it.
package loopback
