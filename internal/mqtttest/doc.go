// Package mqtttest runs a real Mosquitto broker as a child process for tests.
//
// Start writes a throw-away configuration (loopback listener on a free port, anonymous
// access, no persistence, large queues), starts mosquitto in the foreground and waits until
// the port accepts connections. The broker can be stopped and started again on the same port
// to simulate an outage. Subscribe connects a QoS 1 subscriber that reconnects and
// resubscribes by itself and collects what it receives.
//
// StartWith adds options: persistence (with SubscribeWith's persistent sessions, nothing is
// lost while the broker is down), a TLS listener (NewCA makes a throw-away CA and issues
// certificates for 127.0.0.1), and refusing anonymous clients.
//
// When mosquitto is not installed the test is skipped, unless SENTINEL_REQUIRE_MOSQUITTO=1 is
// set, in which case it fails with a hint to install the Debian package "mosquitto".
package mqtttest
