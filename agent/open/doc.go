// Package open builds a unit's parts from its config, by driver name: the barrier relay, the
// credential readers (QR scanner, ID-card reader), the camera, the lane's inputs, the
// platform client and the venue policy, the uplink's settings (brokers, TLS, credential
// files) and the sealing keys. It is the one place that turns config into devices and
// clients: `sentinel run` and `sentinel selftest` both build through it, so that the
// selftest checks exactly what the daemon will use. Every error names the config key to fix.
package open
