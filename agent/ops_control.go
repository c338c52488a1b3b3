package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// The control connection: a small MQTT client of its own, beside the record uplink, that
// keeps the retained status (with a last will that marks the unit offline) and receives
// remote commands. Its client id is the uplink's plus "-ctl"; it uses the same brokers.

// Control tunables; package variables so tests can shrink them.
var (
	// statusPoll is how often the status is rebuilt to look for changes nobody signalled
	// (the uplink, the queue depth).
	statusPoll = time.Second
	// statusMinInterval is the shortest gap between two published statuses (heartbeats
	// aside): a busy lane changes the queue depth with every passage.
	statusMinInterval = time.Second
	// controlReconnectMax caps paho's reconnect backoff.
	controlReconnectMax = 30 * time.Second
	// controlTimeout bounds one connect, publish or subscribe.
	controlTimeout = 5 * time.Second
	// subscribeRetry is how often a failed or refused command subscription is tried again
	// while the connection stays up.
	subscribeRetry = 30 * time.Second
)

// subackFailure is the SUBACK return code of a refused subscription (MQTT 3.1.1, 3.9.3).
const subackFailure = 0x80

// StatusTopic is where the unit's retained status lives.
func (d *Daemon) statusTopic() string { return Topic(d.Cfg, "status") }

// control is the control connection of one daemon.
type control struct {
	d         *Daemon
	st        *opsState
	client    mqtt.Client
	connected atomic.Bool
	cmds      *commander
	stopped   chan struct{} // closed when run ends
}

func init() {
	RegisterPart(Part{Name: "control", Order: 53, Setup: setupControl})
}

func setupControl(_ context.Context, d *Daemon) (func(context.Context) error, error) {
	st := d.ops()
	c := &control{d: d, st: st, stopped: make(chan struct{})}
	cmds, err := newCommander(d, st, c.publish)
	if err != nil {
		return nil, err
	}
	c.cmds = cmds
	_, done := d.eventEmitter() // the commander records events until run returned
	return func(ctx context.Context) error {
		defer done()
		return c.run(ctx)
	}, nil
}

// will is the status the broker publishes when the unit vanishes: the facts known at
// connect time, online false.
func (c *control) will() []byte {
	s := c.st.status(context.Background())
	s.Online, s.Will = false, true
	b, _ := json.Marshal(s)
	return b
}

func (c *control) options() *mqtt.ClientOptions {
	d := c.d
	clientID := d.UplinkConfig.ClientID
	if clientID == "" {
		clientID = "sentinel-" + d.Cfg.Device.Venue + "-" + d.Cfg.Device.ID
	}
	opts := mqtt.NewClientOptions().
		SetClientID(clientID+"-ctl").
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(controlReconnectMax).
		SetConnectTimeout(controlTimeout).
		SetKeepAlive(15*time.Second).
		SetOrderMatters(false).
		SetBinaryWill(d.statusTopic(), c.will(), 1, true).
		SetOnConnectHandler(func(cl mqtt.Client) { go c.onConnect(cl) }).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			c.connected.Store(false)
			c.st.metrics.controlUp.Set(0)
			c.st.metrics.commandsSubscribed.Set(0)
			d.Log.Warn("control connection lost; reconnecting", "err", err)
		})
	for _, b := range d.UplinkConfig.Brokers {
		opts.AddBroker(b)
	}
	// The uplink's TLS settings and credentials (uplink.tls.*, uplink.*_file).
	if tc := d.UplinkConfig.TLS; tc != nil {
		opts.SetTLSConfig(tc.Clone())
	}
	if u := d.UplinkConfig.Username; u != "" {
		opts.SetUsername(u).SetPassword(d.UplinkConfig.Password)
	}
	return opts
}

// onConnect publishes the status and subscribes to the command topics.
func (c *control) onConnect(cl mqtt.Client) {
	filter := Topic(c.d.Cfg, "cmd") + "/+"
	c.connected.Store(true)
	c.st.metrics.controlUp.Set(1)
	c.d.Log.Info("control connection up", "status", c.d.statusTopic(), "commands", filter)
	c.st.touch()
	c.subscribeCommands(cl, filter)
}

// subscribeCommands subscribes to filter, trying again every subscribeRetry while the
// connection is up: a unit whose subscription failed or was refused (a broker ACL) must not
// look ready for commands. The status and the lane do not wait for it.
func (c *control) subscribeCommands(cl mqtt.Client, filter string) bool {
	logged := false
	for {
		err := subscribe(cl, filter, func(_ mqtt.Client, m mqtt.Message) { c.cmds.receive(m.Topic(), m.Payload()) })
		if err == nil {
			c.st.metrics.commandsSubscribed.Set(1)
			if logged {
				c.d.Log.Info("control: subscribed to commands at last", "filter", filter)
			}
			return true
		}
		c.st.metrics.commandsSubscribed.Set(0)
		if !logged {
			c.d.Log.Error("control: cannot subscribe to commands; retrying while connected", "filter", filter, "err", err, "retry", subscribeRetry)
			logged = true
		}
		select {
		case <-c.stopped:
			return false
		case <-time.After(subscribeRetry):
		}
		if !cl.IsConnectionOpen() {
			return false // the next connection subscribes again
		}
	}
}

// subscribe subscribes at QoS 1 and waits for the SUBACK; a refusal in the SUBACK is an
// error (paho reports it only in the token's result).
func subscribe(cl mqtt.Client, filter string, cb mqtt.MessageHandler) error {
	tok := cl.Subscribe(filter, 1, cb)
	if !tok.WaitTimeout(controlTimeout) {
		return fmt.Errorf("agent: subscribe %s: timed out", filter)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("agent: subscribe %s: %w", filter, err)
	}
	if r, ok := tok.(interface{ Result() map[string]byte }); ok {
		if rc, ok := r.Result()[filter]; ok && rc >= subackFailure {
			return fmt.Errorf("agent: subscribe %s: refused by the broker (SUBACK 0x%02x; check its ACL)", filter, rc)
		}
	}
	return nil
}

// publish sends one message at QoS 1 and waits for the acknowledgement.
func (c *control) publish(topic string, retained bool, payload []byte) error {
	if c.client == nil || !c.connected.Load() {
		return fmt.Errorf("agent: control connection down")
	}
	tok := c.client.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(controlTimeout) {
		return fmt.Errorf("agent: publish %s: timed out", topic)
	}
	return tok.Error()
}

// run keeps the connection and the status until ctx ends, then publishes the offline status
// and disconnects.
func (c *control) run(ctx context.Context) error {
	d, st := c.d, c.st
	defer close(c.stopped)
	c.client = mqtt.NewClient(c.options())
	c.client.Connect() // retries in the background (SetConnectRetry)
	cmdsDone := make(chan struct{})
	go func() { defer close(cmdsDone); c.cmds.run(ctx) }()
	go c.pingPlatform(ctx, time.Nanosecond) // the docking state of a unit that just started

	poll := time.NewTicker(statusPoll)
	defer poll.Stop()
	st.mu.Lock()
	hb := st.heartbeat
	st.mu.Unlock()
	heartbeat := time.NewTicker(hb)
	defer heartbeat.Stop()
	var last string
	var lastAt time.Time
	for {
		force := false
		select {
		case <-ctx.Done():
			<-cmdsDone // the command in hand is answered and recorded
			c.goodbye()
			return nil
		case <-heartbeat.C:
			force = true
			st.mu.Lock()
			if st.heartbeat != hb { // changed by a reload
				hb = st.heartbeat
				heartbeat.Reset(hb)
			}
			st.mu.Unlock()
			c.pingPlatform(ctx, hb)
		case <-poll.C:
		case <-st.changed:
		}
		if !c.connected.Load() {
			last = "" // publish again once connected
			continue
		}
		s := st.status(ctx)
		sig := significant(s)
		if !force && (sig == last || time.Since(lastAt) < statusMinInterval) {
			if sig != last {
				st.touchLater(statusMinInterval - time.Since(lastAt))
			}
			continue
		}
		b, _ := json.Marshal(s)
		if err := c.publish(d.statusTopic(), true, b); err != nil {
			d.Log.Warn("status not published", "err", err)
			continue
		}
		st.metrics.statusPublished.Inc()
		last, lastAt = sig, time.Now()
	}
}

// pingPlatform asks the platform whether it answers when no call proved it lately: the
// docking state of a quiet unit. It is the unit's own health check, on no one's behalf.
func (c *control) pingPlatform(ctx context.Context, every time.Duration) {
	st, d := c.st, c.d
	st.mu.Lock()
	recent := !st.lastPlatformOK.IsZero() && time.Since(st.lastPlatformOK) < every
	st.mu.Unlock()
	if recent || d.Client == nil {
		return
	}
	call, err := d.Client.Ping(ctx)
	outcome := callOutcome(call.Status)
	if err != nil && outcome == "ok" {
		outcome = "bad_response" // a 200 whose answer was not usable
	}
	st.metrics.platformCallDone("ping", outcome, call.Latency)
	st.setPlatform(call.Status != 0, err == nil)
}

// goodbye replaces the retained status by an offline one (a clean disconnect does not
// fire the will) and disconnects.
func (c *control) goodbye() {
	if c.connected.Load() {
		s := c.st.status(context.Background())
		s.Online = false
		b, _ := json.Marshal(s)
		if err := c.publish(c.d.statusTopic(), true, b); err != nil {
			c.d.Log.Warn("offline status not published", "err", err)
		}
	}
	c.client.Disconnect(250)
}

// touchLater signals a change after d, so that a change held back by statusMinInterval is
// published once the interval has passed. One timer at most is pending.
func (st *opsState) touchLater(d time.Duration) {
	if !st.laterArmed.CompareAndSwap(false, true) {
		return
	}
	if d <= 0 {
		d = time.Millisecond
	}
	time.AfterFunc(d, func() {
		st.laterArmed.Store(false)
		select {
		case st.changed <- struct{}{}:
		default:
		}
	})
}

// cmdName returns the <name> of a <prefix>/<venue>/<device>/cmd/<name> topic.
func cmdName(topic string) string {
	i := strings.LastIndexByte(topic, '/')
	return topic[i+1:]
}
