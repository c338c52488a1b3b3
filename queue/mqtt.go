package queue

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// conn is the part of an MQTT client the uplink needs: a connected session that publishes at
// QoS 1. Tests fake it; production uses paho.
type conn interface {
	// Publish sends payload to topic at QoS 1, not retained. The ack completes when the
	// PUBACK arrives, or fails.
	Publish(topic string, payload []byte) ack
	// Lost is closed when the connection drops.
	Lost() <-chan struct{}
	// Disconnect closes the connection; it may be called after Lost.
	Disconnect()
}

// ack is the outcome of one publish; paho's Token satisfies it.
type ack interface {
	Done() <-chan struct{}
	Error() error
}

// dialFunc connects to one broker URL, returning when the CONNACK arrived or it failed.
type dialFunc func(ctx context.Context, broker string, cfg UplinkConfig) (conn, error)

// Paho tunables.
var (
	keepAlive    = 15 * time.Second
	writeTimeout = 10 * time.Second
)

// mqttProtocol is MQTT 3.1.1, asked for explicitly: otherwise paho, when a broker does not
// answer the 3.1.1 CONNECT, tries MQTT 3.1 with a fresh ConnectTimeout, so a broker that
// accepts connections but never answers holds every attempt for twice the timeout.
const mqttProtocol = 4

// dialPaho connects a paho client with the settings the outbox relies on: a clean session,
// no automatic reconnect or retry, and an in-memory store that is never the source of truth.
//
// A clean session on purpose: the outbox is the session state. A broker or a cluster keeps
// nothing for the uplink between connections, so a connection to another node of a cluster
// (or the same client id taking over from a half-open connection) starts from the outbox,
// which resends everything not acknowledged.
func dialPaho(ctx context.Context, broker string, cfg UplinkConfig) (conn, error) {
	pc := &pahoConn{lost: make(chan struct{})}
	opts := mqtt.NewClientOptions().
		AddBroker(broker).
		SetClientID(cfg.ClientID).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetStore(mqtt.NewMemoryStore()).
		SetOrderMatters(true).
		SetProtocolVersion(mqttProtocol).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetKeepAlive(keepAlive).
		SetPingTimeout(keepAlive / 2).
		SetWriteTimeout(writeTimeout).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { pc.markLost(err) })
	if isTLS(broker) {
		opts.SetTLSConfig(tlsConfig(cfg.TLS))
	}
	if cfg.Username != "" {
		opts.SetUsername(cfg.Username)
		opts.SetPassword(cfg.Password)
	}
	pc.c = mqtt.NewClient(opts)
	tok := pc.c.Connect()
	// paho bounds the attempt by ConnectTimeout itself; this timer is the guard should it not.
	guard := time.NewTimer(cfg.ConnectTimeout + connectGrace)
	defer guard.Stop()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		abandon(pc.c, tok)
		return nil, ctx.Err()
	case <-guard.C:
		abandon(pc.c, tok)
		return nil, fmt.Errorf("%w: no CONNACK within %v (uplink connect timeout)", errNoAnswer, cfg.ConnectTimeout)
	}
	if err := tok.Error(); err != nil {
		return nil, explainConnect(err, cfg.ConnectTimeout)
	}
	return pc, nil
}

// connectGrace is how long past ConnectTimeout dialPaho waits for paho's own timeout.
const connectGrace = time.Second

// abandon tidies up a connect in progress once it ends: paho cannot abort one.
func abandon(c mqtt.Client, tok mqtt.Token) {
	go func() {
		<-tok.Done()
		c.Disconnect(0)
	}()
}

// isTLS reports whether a broker URL asks for TLS.
func isTLS(broker string) bool {
	for _, p := range []string{"ssl://", "tls://", "mqtts://", "tcps://"} {
		if strings.HasPrefix(strings.ToLower(broker), p) {
			return true
		}
	}
	return false
}

// tlsConfig returns a copy of c (or a new config) that never goes below TLS 1.2 and always
// verifies the broker's certificate: a bad certificate fails the connection (closed).
func tlsConfig(c *tls.Config) *tls.Config {
	if c == nil {
		c = &tls.Config{}
	}
	c = c.Clone()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	c.InsecureSkipVerify = false
	return c
}

// explainConnect adds what to do to the connect errors a field engineer meets. A timeout
// (no TCP connection, or no CONNACK, within timeout) wraps errNoAnswer.
func explainConnect(err error, timeout time.Duration) error {
	msg := err.Error()
	var hint string
	var ne net.Error
	var op *net.OpError
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("%w: no TCP connection within %v (uplink connect timeout): %w", errNoAnswer, timeout, err)
		}
		return fmt.Errorf("%w: no CONNACK within %v (uplink connect timeout); the broker accepted the connection but did not answer CONNECT: %w", errNoAnswer, timeout, err)
	case strings.Contains(msg, "EOF") || strings.Contains(msg, "connection reset"):
		hint = "the broker closed the connection before CONNACK (shutting down, overloaded, or refusing the client id)"
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:"):
		hint = "TLS handshake refused; the broker's certificate does not verify against uplink.tls.ca_file (or the client certificate was refused)"
	case strings.Contains(msg, "not Authorized") || strings.Contains(msg, "bad user name or password"):
		hint = "the broker refused the credentials (uplink.username_file, uplink.password_file) or the ACL"
	default:
		return err
	}
	return fmt.Errorf("%s: %w", hint, err)
}

type pahoConn struct {
	c        mqtt.Client
	lost     chan struct{}
	lostOnce sync.Once
	lostErr  error // set before lost is closed
}

func (p *pahoConn) markLost(err error) {
	p.lostOnce.Do(func() {
		p.lostErr = err
		close(p.lost)
	})
}

// LostReason returns why the connection dropped, once Lost is closed.
func (p *pahoConn) LostReason() error { return p.lostErr }

func (p *pahoConn) Publish(topic string, payload []byte) ack {
	return p.c.Publish(topic, 1, false, payload)
}

func (p *pahoConn) Lost() <-chan struct{} { return p.lost }

func (p *pahoConn) Disconnect() {
	p.c.Disconnect(250)
	p.markLost(errors.New("disconnected"))
}

var _ conn = (*pahoConn)(nil)
