// Package broker is an embedded MQTT 3.1.1 (and 5) broker for demos and
// tests, built on github.com/mochi-mqtt/server/v2: one TCP listener, every
// client allowed, nothing persisted. It is not meant for production; the
// agent talks to whatever broker its configuration names.
package broker
