package scale

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// msg is one message the platform's subscriber received.
type msg struct {
	at      time.Time
	topic   string
	payload []byte
}

// capture is the platform's subscriber: a persistent session (clean session off) under a
// fixed client id, QoS 1, reconnecting by itself to the brokers in order, so that nothing
// published while it is away is lost by a broker that keeps sessions.
type capture struct {
	client mqtt.Client

	mu      sync.Mutex
	msgs    []msg
	changed chan struct{}
	ups     int // connections made, the first included
}

// subscribe connects a capture to brokers (tried in order), subscribes to filter and waits
// for the SUBACK.
func subscribe(t *testing.T, brokers []string, clientID, filter string) *capture {
	t.Helper()
	c := &capture{changed: make(chan struct{})}
	subscribed := make(chan error, 1)
	opts := mqtt.NewClientOptions().
		SetClientID(clientID).
		SetCleanSession(false).
		SetProtocolVersion(4).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).
		SetMaxReconnectInterval(500 * time.Millisecond).
		SetConnectTimeout(3 * time.Second).
		SetKeepAlive(10 * time.Second).
		SetOrderMatters(true).
		SetDefaultPublishHandler(c.receive).
		SetOnConnectHandler(func(cl mqtt.Client) {
			c.mu.Lock()
			c.ups++
			first := c.ups == 1
			c.mu.Unlock()
			if first { // the session keeps the subscription afterwards
				go func() {
					tok := cl.Subscribe(filter, 1, nil)
					tok.WaitTimeout(30 * time.Second)
					subscribed <- tok.Error()
				}()
			}
		})
	for _, b := range brokers {
		opts.AddBroker(b)
	}
	c.client = mqtt.NewClient(opts)
	c.client.Connect()
	t.Cleanup(func() { c.client.Disconnect(100) })
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatalf("subscriber %s: subscribe %s: %v", clientID, filter, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("subscriber %s: no SUBACK for %s from %v within 60s", clientID, filter, brokers)
	}
	return c
}

func (c *capture) receive(_ mqtt.Client, m mqtt.Message) {
	ms := msg{at: time.Now(), topic: m.Topic(), payload: append([]byte(nil), m.Payload()...)}
	c.mu.Lock()
	c.msgs = append(c.msgs, ms)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// messages returns what arrived so far, in arrival order.
func (c *capture) messages() []msg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]msg(nil), c.msgs...)
}

// reconnects returns how many times the subscriber connected after the first.
func (c *capture) reconnects() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(0, c.ups-1)
}

// waitFor waits until every id in want arrived (or within passes) and returns how many are
// still missing.
func (c *capture) waitFor(want map[string]bool, within time.Duration) int {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	seen := make(map[string]bool, len(want))
	from := 0
	for {
		c.mu.Lock()
		for _, m := range c.msgs[from:] {
			if r, ok := parseRecord(m); ok && want[r.ID] {
				seen[r.ID] = true
			}
		}
		from = len(c.msgs)
		ch := c.changed
		c.mu.Unlock()
		if len(seen) == len(want) {
			return 0
		}
		select {
		case <-ch:
		case <-deadline.C:
			return len(want) - len(seen)
		}
	}
}

// rec is what the checks read of a record: its id and seq, and the device and stream of
// its topic (<prefix>/<venue>/<device>/<stream>).
type rec struct {
	ID     string `json:"id"`
	Seq    int64  `json:"seq"`
	Device string `json:"-"`
	Stream string `json:"-"`
}

// parseRecord decodes a captured record; ok is false for what is not an outbox record (the
// retained status, command replies).
func parseRecord(m msg) (rec, bool) {
	parts := strings.Split(m.topic, "/")
	if len(parts) != 5 {
		return rec{}, false
	}
	var r rec
	if err := json.Unmarshal(m.payload, &r); err != nil || r.ID == "" || r.Seq <= 0 {
		return rec{}, false
	}
	r.Device, r.Stream = parts[3], parts[4]
	return r, true
}
