// Package mqtttest runs a real Mosquitto broker as a child process for tests.
//
// Start writes a throw-away configuration (loopback listener on a free port, anonymous
// access, no persistence, large queues), starts mosquitto in the foreground and waits until
// the port accepts connections. The broker can be stopped and started again on the same port
// to simulate an outage. Subscribe connects a QoS 1 subscriber that reconnects and
// resubscribes by itself and collects what it receives.
//
// When mosquitto is not installed the test is skipped, unless SENTINEL_REQUIRE_MOSQUITTO=1 is
// set, in which case it fails with a hint to install the Debian package "mosquitto".
package mqtttest
