package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/backoff"
)

// The control connection: a small MQTT client of its own, beside the record uplink, that
// keeps the retained status (with a last will that marks the unit offline) and receives
// remote commands. Its client id is the uplink's plus "-ctl"; it uses the same brokers, TLS
// and credentials. It reconnects itself with the uplink's full-jitter backoff, and says
// why at WARN when it cannot.

// subackFailure is the SUBACK return code of a refused subscription (MQTT 3.1.1, 3.9.3).
const subackFailure = 0x80

// control is the control connection of one unit.
type control struct {
	o       *Ops
	status  string        // the status topic
	stopped chan struct{} // closed when run ends

	mu        sync.Mutex
	client    mqtt.Client // the connected client; nil while down
	connected bool
}

func newControl(o *Ops) *control {
	return &control{o: o, status: o.unit.Topic(record.KindStatus), stopped: make(chan struct{})}
}

// will is the status the broker publishes when the unit vanishes: the facts known at connect
// time, online false.
func (c *control) will() []byte {
	s := c.o.Status(context.Background())
	s.Online, s.Will = false, true
	b, _ := json.Marshal(s)
	return b
}

// options are one connection attempt's, to one broker: MQTT 3.1.1 (paho would otherwise
// retry a silent broker with 3.1 and double the wait), no automatic reconnect (connection
// does it, with backoff), the status as the will.
func (c *control) options(broker string, lost chan<- error) *mqtt.ClientOptions {
	u := c.o.opt.Control
	opts := mqtt.NewClientOptions().
		AddBroker(broker).
		SetProtocolVersion(4).
		SetClientID(u.ClientID+"-ctl").
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(c.o.t.ControlTimeout).
		SetKeepAlive(15*time.Second).
		SetOrderMatters(false).
		SetBinaryWill(c.status, c.will(), 1, true).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	if u.TLS != nil {
		opts.SetTLSConfig(u.TLS.Clone())
	}
	if u.Username != "" {
		opts.SetUsername(u.Username).SetPassword(u.Password)
	}
	return opts
}

// connection keeps the control connection up until ctx ends, with full-jitter backoff
// between attempts; a connection that lasted BackoffReset starts the backoff again. An
// outage is logged once at WARN with the reason, its end at INFO.
func (c *control) connection(ctx context.Context) {
	o := c.o
	b := backoff.FullJitter{Base: o.t.ReconnectBase, Cap: o.t.ReconnectCap}
	reset := o.opt.Control.BackoffReset
	if reset <= 0 {
		reset = 10 * time.Second
	}
	attempt, failures := 0, 0
	var outageSince time.Time
	for ctx.Err() == nil {
		lost := make(chan error, 1)
		cl, err := c.dial(ctx, lost)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			if outageSince.IsZero() {
				outageSince = time.Now()
				o.opt.Log.Warn("control connection: cannot connect; retrying with backoff", "brokers", strings.Join(o.opt.Control.Brokers, ","), "err", err)
			} else {
				o.opt.Log.Debug("control connection: connect failed", "attempt", failures, "err", err)
			}
			if !sleep(ctx, b.Delay(attempt)) {
				return
			}
			attempt++
			continue
		}
		up := time.Now()
		if !outageSince.IsZero() {
			o.opt.Log.Info("control connection up again", "outage", time.Since(outageSince).Round(time.Millisecond), "failed_attempts", failures)
		}
		outageSince, failures = time.Time{}, 0
		c.up(cl)
		select {
		case <-ctx.Done():
			return
		case err = <-lost:
		}
		c.down()
		outageSince = time.Now()
		o.opt.Log.Warn("control connection lost; reconnecting with backoff", "err", err)
		if time.Since(up) >= reset {
			attempt = 0
		}
		if !sleep(ctx, b.Delay(attempt)) {
			return
		}
		attempt++
	}
}

// dial tries the brokers one at a time, in the uplink's order (those that did not answer it
// in time last), and returns the first connection.
func (c *control) dial(ctx context.Context, lost chan<- error) (mqtt.Client, error) {
	order := c.o.opt.Uplink.BrokerOrder()
	if len(order) == 0 {
		order = c.o.opt.Control.Brokers
	}
	var errs []error
	for _, b := range order {
		cl := mqtt.NewClient(c.options(b, lost))
		err := c.connect(ctx, cl)
		if err == nil {
			return cl, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, fmt.Errorf("%s: %w", b, err))
	}
	if len(errs) == 0 {
		return nil, errors.New("ops: control connection: no brokers configured")
	}
	return nil, errors.Join(errs...)
}

// connect makes one connection attempt, bounded by ControlTimeout and ctx.
func (c *control) connect(ctx context.Context, cl mqtt.Client) error {
	tok := cl.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		go func() { <-tok.Done(); cl.Disconnect(0) }()
		return ctx.Err()
	case <-time.After(c.o.t.ControlTimeout + time.Second):
		go func() { <-tok.Done(); cl.Disconnect(0) }()
		return fmt.Errorf("ops: control connect: no CONNACK within %s", c.o.t.ControlTimeout)
	}
	return tok.Error()
}

// up makes cl the control connection: the status is published, the commands subscribed.
func (c *control) up(cl mqtt.Client) {
	o := c.o
	c.mu.Lock()
	c.client, c.connected = cl, true
	c.mu.Unlock()
	o.metrics.controlUp.Set(1)
	filter := o.unit.Topic(record.KindCommand) + "/+"
	o.opt.Log.Info("control connection up", "status", c.status, "commands", filter)
	o.touch()
	go c.subscribeCommands(cl, filter)
}

func (c *control) down() {
	c.mu.Lock()
	cl := c.client
	c.client, c.connected = nil, false
	c.mu.Unlock()
	c.o.metrics.controlUp.Set(0)
	c.o.metrics.commandsSubscribed.Set(0)
	if cl != nil {
		cl.Disconnect(0)
	}
}

func (c *control) isConnected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

// subscribeCommands subscribes to filter, trying again every SubscribeRetry while the
// connection is up: a unit whose subscription failed or was refused (a broker ACL) must not
// look ready for commands. The status and the lane do not wait for it.
func (c *control) subscribeCommands(cl mqtt.Client, filter string) bool {
	o := c.o
	logged := false
	for {
		err := subscribe(cl, filter, o.t.ControlTimeout, func(_ mqtt.Client, m mqtt.Message) { o.cmds.receive(m.Topic(), m.Payload()) })
		if err == nil {
			o.metrics.commandsSubscribed.Set(1)
			if logged {
				o.opt.Log.Info("control: subscribed to commands at last", "filter", filter)
			}
			return true
		}
		o.metrics.commandsSubscribed.Set(0)
		if !logged {
			o.opt.Log.Error("control: cannot subscribe to commands; retrying while connected", "filter", filter, "err", err, "retry", o.t.SubscribeRetry)
			logged = true
		}
		select {
		case <-c.stopped:
			return false
		case <-time.After(o.t.SubscribeRetry):
		}
		if !cl.IsConnectionOpen() {
			return false // the next connection subscribes again
		}
	}
}

// subscribe subscribes at QoS 1 and waits for the SUBACK; a refusal in the SUBACK is an
// error (paho reports it only in the token's result).
func subscribe(cl mqtt.Client, filter string, timeout time.Duration, cb mqtt.MessageHandler) error {
	tok := cl.Subscribe(filter, 1, cb)
	if !tok.WaitTimeout(timeout) {
		return fmt.Errorf("ops: subscribe %s: timed out", filter)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("ops: subscribe %s: %w", filter, err)
	}
	if r, ok := tok.(interface{ Result() map[string]byte }); ok {
		if rc, ok := r.Result()[filter]; ok && rc >= subackFailure {
			return fmt.Errorf("ops: subscribe %s: refused by the broker (SUBACK 0x%02x; check its ACL)", filter, rc)
		}
	}
	return nil
}

// publish sends one message at QoS 1 and waits for the acknowledgement.
func (c *control) publish(topic string, retained bool, payload []byte) error {
	c.mu.Lock()
	cl, ok := c.client, c.connected
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("ops: control connection down")
	}
	tok := cl.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(c.o.t.ControlTimeout) {
		return fmt.Errorf("ops: publish %s: timed out", topic)
	}
	return tok.Error()
}

// run keeps the connection and the status until ctx ends, then publishes the offline status
// and disconnects. The status is also written to the status file beside the queue, at the
// same moments, whether or not a broker is reachable.
func (c *control) run(ctx context.Context) error {
	o := c.o
	defer close(c.stopped)
	o.cmds.publish = c.publish
	connDone := make(chan struct{})
	go func() { defer close(connDone); c.connection(ctx) }()
	cmdsDone := make(chan struct{})
	go func() { defer close(cmdsDone); o.cmds.run(ctx) }()

	poll := time.NewTicker(o.t.StatusPoll)
	defer poll.Stop()
	o.mu.Lock()
	hb := o.heartbeat
	o.mu.Unlock()
	heartbeat := time.NewTicker(hb)
	defer heartbeat.Stop()
	var file, pub pace
	for {
		force := false
		select {
		case <-ctx.Done():
			<-cmdsDone // the command in hand is answered and recorded
			<-connDone
			c.goodbye()
			return nil
		case <-heartbeat.C:
			force = true
			o.mu.Lock()
			if o.heartbeat != hb { // changed by a reload
				hb = o.heartbeat
				heartbeat.Reset(hb)
			}
			o.mu.Unlock()
		case <-poll.C:
			o.refreshEvidence() // sentinel selftest or docking-check may have run
		case <-o.changed:
		}
		s := o.Status(ctx)
		sig := significant(s)
		b, _ := json.Marshal(s)
		if file.due(sig, force, o.t.StatusMinInterval) {
			if err := o.writeStatusFile(b); err != nil {
				file.failed()
				o.opt.Log.Warn("status file not written", "err", err)
			}
		}
		if !c.isConnected() {
			pub = pace{} // publish again once connected
		} else if pub.due(sig, force, o.t.StatusMinInterval) {
			if err := c.publish(c.status, true, b); err != nil {
				pub.failed()
				o.opt.Log.Warn("status not published", "err", err)
			} else {
				o.metrics.statusPublished.Inc()
			}
		}
		if d := max(file.held, pub.held); d > 0 {
			o.touchLater(d)
		}
	}
}

// pace decides when a status is written out: on a heartbeat, and on a change, at most once
// per minimum interval (a change held back is written once the interval has passed).
type pace struct {
	last   string
	lastAt time.Time
	held   time.Duration // > 0: a change waits this long
}

func (p *pace) due(sig string, force bool, minInterval time.Duration) bool {
	p.held = 0
	if !force && sig == p.last {
		return false
	}
	if since := time.Since(p.lastAt); !force && since < minInterval {
		p.held = minInterval - since
		return false
	}
	p.last, p.lastAt = sig, time.Now()
	return true
}

// failed forgets the last write, so that the next turn tries again.
func (p *pace) failed() { p.last = "" }

// settleWait bounds how long the offline status waits for records still on their way.
const settleWait = 2 * time.Second

// goodbye replaces the retained status by an offline one (a clean disconnect does not fire
// the will) and disconnects. The connection loop has ended; the client, if any, is still
// connected.
func (c *control) goodbye() {
	if settle := c.o.opt.Settle; settle != nil {
		ctx, cancel := context.WithTimeout(context.Background(), settleWait)
		settle(ctx)
		cancel()
	}
	s := c.o.Status(context.Background())
	s.Online = false
	b, _ := json.Marshal(s)
	if err := c.o.writeStatusFile(b); err != nil {
		c.o.opt.Log.Warn("status file not written", "err", err)
	}
	if c.isConnected() {
		if err := c.publish(c.status, true, b); err != nil {
			c.o.opt.Log.Warn("offline status not published", "err", err)
		}
	}
	c.mu.Lock()
	cl := c.client
	c.client, c.connected = nil, false
	c.mu.Unlock()
	if cl != nil {
		cl.Disconnect(250)
	}
}

// touchLater signals a change after d, so that a change held back by StatusMinInterval is
// published once the interval has passed. One timer at most is pending.
func (o *Ops) touchLater(d time.Duration) {
	if !o.laterArmed.CompareAndSwap(false, true) {
		return
	}
	if d <= 0 {
		d = time.Millisecond
	}
	time.AfterFunc(d, func() {
		o.laterArmed.Store(false)
		select {
		case o.changed <- struct{}{}:
		default:
		}
	})
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// cmdName returns the <name> of a <prefix>/<venue>/<device>/cmd/<name> topic.
func cmdName(topic string) string {
	i := strings.LastIndexByte(topic, '/')
	return topic[i+1:]
}
