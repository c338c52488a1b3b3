package mqtttest

import (
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// ReconnectInterval is how often a Collector retries after losing its connection.
var ReconnectInterval = 20 * time.Millisecond

// Message is one message a Collector received.
type Message struct {
	Topic   string
	Payload []byte
}

// Collector is a QoS 1, clean-session subscriber that records every message it receives.
// When the connection drops it reconnects and subscribes again by itself; messages published
// while it was away are lost (the session is clean and the broker keeps nothing).
type Collector struct {
	filter string
	client mqtt.Client

	mu         sync.Mutex
	msgs       []Message
	subscribes int           // successful SUBACKs, including the first
	changed    chan struct{} // closed and replaced on every change
	closed     atomic.Bool
}

var collectorIDs atomic.Int64

// SubOptions configure a Collector.
type SubOptions struct {
	// Persistent uses a persistent session (clean session off) under a fixed client id, so
	// that on a broker with Options.Persistence nothing published while the collector was
	// away (or the broker was down) is lost: the broker queues it and sends it on reconnect.
	Persistent bool
	// TLS is the client's TLS configuration for an ssl:// broker.
	TLS *tls.Config
	// Username and Password log the subscriber in (see Options.Users).
	Username, Password string
}

// Subscribe connects a subscriber to the broker, subscribes to topicFilter at QoS 1 and
// waits for the SUBACK. t.Cleanup disconnects it.
func (b *Broker) Subscribe(t testing.TB, topicFilter string) *Collector {
	t.Helper()
	return b.SubscribeWith(t, topicFilter, SubOptions{})
}

// SubscribeWith is Subscribe with options.
func (b *Broker) SubscribeWith(t testing.TB, topicFilter string, so SubOptions) *Collector {
	t.Helper()
	c := &Collector{filter: topicFilter, changed: make(chan struct{})}
	opts := mqtt.NewClientOptions().
		AddBroker(b.URL()).
		SetClientID(fmt.Sprintf("mqtttest-sub-%d-%d", b.port, collectorIDs.Add(1))).
		SetCleanSession(!so.Persistent).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(2 * time.Second).
		SetKeepAlive(5 * time.Second).
		SetOrderMatters(true).
		SetDefaultPublishHandler(c.receive).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(func(mqtt.Client, error) { go c.reconnect() })
	if so.TLS != nil {
		opts.SetTLSConfig(so.TLS)
	}
	if so.Username != "" {
		opts.SetUsername(so.Username)
		opts.SetPassword(so.Password)
	}
	c.client = mqtt.NewClient(opts)
	t.Cleanup(c.Close)
	if tok := c.client.Connect(); !tok.WaitTimeout(StartTimeout) || tok.Error() != nil {
		t.Fatalf("mqtttest: subscriber connect to %s: %v", b.URL(), tok.Error())
	}
	if !c.WaitSubscribes(1, StartTimeout) {
		t.Fatalf("mqtttest: subscribe to %q on %s timed out", topicFilter, b.URL())
	}
	return c
}

// onConnect subscribes (again) on every new connection; paho calls it on its own goroutine.
func (c *Collector) onConnect(cl mqtt.Client) {
	go func() {
		tok := cl.Subscribe(c.filter, 1, nil)
		if !tok.WaitTimeout(StartTimeout) || tok.Error() != nil {
			cl.Disconnect(0)
			go c.reconnect()
			return
		}
		c.mu.Lock()
		c.subscribes++
		c.notifyLocked()
		c.mu.Unlock()
	}()
}

func (c *Collector) reconnect() {
	for !c.closed.Load() {
		time.Sleep(ReconnectInterval)
		if c.closed.Load() {
			return
		}
		tok := c.client.Connect()
		if tok.WaitTimeout(StartTimeout) && tok.Error() == nil {
			if c.closed.Load() {
				c.client.Disconnect(0)
			}
			return
		}
	}
}

func (c *Collector) receive(_ mqtt.Client, m mqtt.Message) {
	msg := Message{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...)}
	c.mu.Lock()
	c.msgs = append(c.msgs, msg)
	c.notifyLocked()
	c.mu.Unlock()
}

func (c *Collector) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// WaitN waits until at least n messages have arrived or timeout passes, and returns a copy of
// all messages received so far (which may be fewer than n on timeout, or more than n).
func (c *Collector) WaitN(n int, timeout time.Duration) []Message {
	c.wait(timeout, func() bool { return len(c.msgs) >= n })
	return c.Messages()
}

// WaitSubscribes waits until the collector has subscribed n times in total (the first
// subscription counts as 1, each resubscription after a reconnect adds 1).
func (c *Collector) WaitSubscribes(n int, timeout time.Duration) bool {
	return c.wait(timeout, func() bool { return c.subscribes >= n })
}

// Subscribes returns how many times the collector has subscribed so far.
func (c *Collector) Subscribes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subscribes
}

// Messages returns a copy of the messages received so far, in arrival order.
func (c *Collector) Messages() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.msgs...)
}

// Close disconnects the subscriber and stops its reconnecting. It is idempotent.
func (c *Collector) Close() {
	if c.closed.Swap(true) {
		return
	}
	c.client.Disconnect(100)
}

// wait blocks until cond (called with c.mu held) holds or timeout passes.
func (c *Collector) wait(timeout time.Duration, cond func() bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		ok := cond()
		ch := c.changed
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		}
	}
}
