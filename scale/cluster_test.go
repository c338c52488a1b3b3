package scale

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/mqtttest"
)

var (
	lostLine     = regexp.MustCompile(`msg="uplink: connection lost`)
	fallbackLine = regexp.MustCompile(`msg="uplink: using a fallback broker"`)
	controlUp    = regexp.MustCompile(`msg="control connection up"`)
	brokerAttr   = regexp.MustCompile(`\bbroker=(\S+)`)
	logTimeAttr  = regexp.MustCompile(`^time=(\S+)`)
)

// logTime returns the time the agent wrote in the line (text format), or when it was read.
func logTime(l line) time.Time {
	if m := logTimeAttr.FindStringSubmatch(l.text); m != nil {
		if t, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
			return t
		}
	}
	return l.at
}

// failover is one stop of the node the agent was connected to.
type failover struct {
	node          string
	clean         bool
	lost, puback  time.Duration // from the stop command to the connection's loss, and to the next PUBACK
	reconnect     time.Duration // from the loss to the next CONNACK
	lossToPuback  time.Duration
	newBroker     string
	stoppedClean  bool // the clean stop did stop cleanly (else it was killed after RabbitStopTimeout)
	deliveredNext bool
	bootRetries   int // the node's restart had to be tried again (a RabbitMQ boot that hung)
	tracking      int // members of the client-id tracking cluster after the node's restart
	trackingErr   error
}

// TestCluster is make test-cluster: a three-node RabbitMQ cluster on loopback (quorum
// queues for persistent sessions), the agent given the three MQTT listeners, the platform's
// subscriber with a persistent session on the third node. Under load the node the agent is
// connected to is stopped ten times, alternately cleanly and with SIGKILL, and brought back:
// every record must arrive, in the documented order, none lost; the time from the node's
// loss to the next PUBACK is measured. Then the faults of a broker list, with the agent's
// default timeouts: a first node that never answers CONNECT, a node whose PUBACKs are late,
// a dead first entry.
func TestCluster(t *testing.T) {
	requireScale(t)
	began := time.Now()
	cl := mqtttest.StartCluster(t, 3)
	t.Logf("cluster of 3 up in %v", cl.Boot.Round(time.Millisecond))
	if d := os.Getenv("SCALE_ARTIFACTS"); d != "" {
		t.Cleanup(func() {
			for _, n := range cl.Nodes {
				_ = os.WriteFile(filepath.Join(d, t.Name()+"-"+n.Name+".log"), []byte(n.Output()), 0o644)
			}
		})
	}
	urls := []string{cl.Nodes[0].URL(), cl.Nodes[1].URL(), cl.Nodes[2].URL()}
	w := newWorld(t)
	sub := subscribe(t, []string{urls[2], urls[0], urls[1]}, "platform-cluster", "sentinel/v1/"+venue+"/+/+")
	c := &checks{t: t}

	u := w.newUnit(t, "cluster-01", 20, unitConfig{brokers: urls})
	p := u.start(t)
	p.mustLine(t, connectedLine, 30*time.Second)
	stops := envInt(t, "CLUSTER_STOPS", 10)
	var fs []failover
	for i := range stops {
		fs = append(fs, stopConnectedNode(t, cl, u, i%2 == 0))
	}
	u.scanner.interrupt(5 * time.Second)
	u.waitDrained(t, 2*time.Minute)
	p = u.current()
	p.interrupt(20 * time.Second)
	res := verifyUnit(t, c, u, sub, 2*time.Minute)
	failoverSummary := checkFailovers(c, fs)

	faults := []string{
		silentFirstNode(t, c, w, sub, urls),
		slowNode(t, c, w, sub, urls),
		deadFirstURL(t, c, w, sub, urls),
	}
	c.done(fmt.Sprintf("cluster: rabbitmq 3 nodes boot=%s %s %s; faults: %s; took=%s",
		cl.Boot.Round(100*time.Millisecond), failoverSummary, res.totals(), strings.Join(faults, " "), time.Since(began).Round(time.Second)))
}

// stopConnectedNode stops (clean) or kills the node the agent is connected to, measures the
// failover and brings the node back.
func stopConnectedNode(t *testing.T, cl *mqtttest.Cluster, u *unit, clean bool) failover {
	t.Helper()
	p := u.current()
	lines := p.snapshot()
	var cur string
	from := len(lines)
	for j := len(lines) - 1; j >= 0; j-- {
		if connectedLine.MatchString(lines[j].text) {
			cur = brokerAttr.FindStringSubmatch(lines[j].text)[1]
			// The backoff starts over once a connection lasted uplink.backoff_reset (10s): a
			// node's loss in the field comes after a long connection.
			if d := time.Until(logTime(lines[j]).Add(11 * time.Second)); d > 0 {
				time.Sleep(d)
			}
			break
		}
	}
	var node *mqtttest.Node
	for _, n := range cl.Nodes {
		if n.URL() == cur {
			node = n
		}
	}
	if node == nil {
		t.Fatalf("the agent is connected to %q, not a cluster node:\n%s", cur, tail(p.output(), 20))
	}
	f := failover{node: node.Name, clean: clean}
	stopAt := time.Now()
	stopped := make(chan bool, 1)
	if clean {
		go func() { stopped <- node.Stop() }()
	} else {
		node.Kill()
		stopped <- true
	}
	li, ll, ok := p.waitLine(lostLine, from, 2*time.Minute)
	if !ok {
		t.Fatalf("the agent did not notice the loss of %s:\n%s", node.Name, tail(p.output(), 30))
	}
	lostAt := logTime(ll)
	_, cl2, ok := p.waitLine(connectedLine, li, 2*time.Minute)
	if !ok {
		t.Fatalf("the agent did not connect again after the loss of %s:\n%s", node.Name, tail(p.output(), 30))
	}
	f.newBroker = brokerAttr.FindStringSubmatch(cl2.text)[1]
	f.lost, f.reconnect = lostAt.Sub(stopAt), logTime(cl2).Sub(lostAt)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		at, ok, err := u.firstDeliveryAfter(lostAt)
		if err == nil && ok {
			f.deliveredNext, f.puback, f.lossToPuback = true, at.Sub(stopAt), at.Sub(lostAt)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.stoppedClean = <-stopped // the clean stop's end
	f.bootRetries = node.StartRetrying(2*time.Minute, 3)
	f.tracking, f.trackingErr = cl.TrackingMembers(node)
	t.Logf("stop %s (clean %v): connection lost %v after the command, CONNACK from %s %v later, first PUBACK %v after the loss",
		node.Name, clean, f.lost.Round(time.Millisecond), f.newBroker, f.reconnect.Round(time.Millisecond), f.lossToPuback.Round(time.Millisecond))
	return f
}

// checkFailovers checks that every failover delivered again and summarises the times.
func checkFailovers(c *checks, fs []failover) string {
	var lp []time.Duration
	clean, within, retries := 0, 0, 0
	for _, f := range fs {
		retries += f.bootRetries
		c.check("delivery resumed after the loss of "+f.node, f.deliveredNext, "no PUBACK after the loss")
		if f.clean {
			clean++
			c.check("clean stop of "+f.node, f.stoppedClean, "rabbitmqctl shutdown did not stop it; it was killed")
		}
		tracked := f.trackingErr == nil && f.tracking == 3
		c.check("client-id tracking whole after the restart of "+f.node, tracked,
			"mqtt_node has %d members (%v); the loss of one more node would leave it no majority", f.tracking, f.trackingErr)
		lp = append(lp, f.lossToPuback)
		if f.lossToPuback <= 5*time.Second {
			within++
		}
	}
	slices.Sort(lp)
	if len(lp) == 0 {
		return "stops=0"
	}
	return fmt.Sprintf("stops=%d (clean=%d kill=%d) loss_to_next_puback: median=%s max=%s within_5s=%d/%d node_boot_retries=%d",
		len(fs), clean, len(fs)-clean, lp[len(lp)/2].Round(time.Millisecond), lp[len(lp)-1].Round(time.Millisecond), within, len(fs), retries)
}

// faultUnit starts an agent over brokers and returns it with the time from its launch to
// its first uplink CONNACK and the connected line.
func faultUnit(t *testing.T, w *world, id string, brokers []string) (*unit, time.Duration, line) {
	t.Helper()
	u := w.newUnit(t, id, 10, unitConfig{brokers: brokers})
	start := time.Now()
	p := u.launch(t)
	l := p.mustLine(t, connectedLine, time.Minute)
	return u, logTime(l).Sub(start), l
}

// controlDelay returns how long after the uplink's CONNACK the control connection came up.
func controlDelay(p *proc, uplinkAt time.Time, within time.Duration) (time.Duration, bool) {
	_, l, ok := p.waitLine(controlUp, 0, within)
	if !ok {
		return 0, false
	}
	return logTime(l).Sub(uplinkAt), true
}

// finishFault stops the unit's scans, waits for the drain, stops the agent and checks its
// records.
func finishFault(t *testing.T, c *checks, u *unit, sub *capture) {
	t.Helper()
	u.scanner.interrupt(5 * time.Second)
	u.waitDrained(t, 2*time.Minute)
	u.current().interrupt(20 * time.Second)
	verifyUnit(t, c, u, sub, 2*time.Minute)
}

// silentFirstNode: the first broker accepts connections and never answers CONNECT. The
// uplink must move on within its connect timeout (5 s) and say why.
func silentFirstNode(t *testing.T, c *checks, w *world, sub *capture, urls []string) string {
	silent := mqtttest.StartSilent(t)
	u, took, l := faultUnit(t, w, "cluster-silent", append([]string{silent.URL()}, urls...))
	p := u.current()
	fb := fallbackText(p)
	c.check("silent first node: moved on within the connect timeout", took <= 7500*time.Millisecond, "first CONNACK %v after the start (connect timeout 5s)", took)
	c.check("silent first node: the log says why", strings.Contains(fb, "no CONNACK within 5s") && strings.Contains(fb, silent.URL()), "fallback line: %q", fb)
	ctl, ok := controlDelay(p, logTime(l), time.Minute)
	finishFault(t, c, u, sub)
	return fmt.Sprintf("silent_first_node: uplink_connack=%s control_up=%s(after uplink; ok=%v)", took.Round(10*time.Millisecond), ctl.Round(10*time.Millisecond), ok)
}

// fallbackText returns the agent's first "using a fallback broker" line, if any.
func fallbackText(p *proc) string {
	for _, l := range p.snapshot() {
		if fallbackLine.MatchString(l.text) {
			return l.text
		}
	}
	return ""
}

// slowNode: a proxy in front of the first node starts delaying what the node sends by 30 s
// (past the 15 s ack timeout). The uplink must move on within the ack timeout, say why and
// lose nothing.
func slowNode(t *testing.T, c *checks, w *world, sub *capture, urls []string) string {
	proxy := mqtttest.StartProxy(t, strings.TrimPrefix(urls[0], "tcp://"))
	u, _, _ := faultUnit(t, w, "cluster-slow", append([]string{proxy.URL()}, urls[1:]...))
	p := u.current()
	p.mustLine(t, regexp.MustCompile(`msg=passage `), 30*time.Second)
	from := len(p.snapshot())
	proxy.SetDelay(30 * time.Second)
	slowAt := time.Now()
	li, ll, ok := p.waitLine(lostLine, from, time.Minute)
	c.check("slow node: the uplink gave it up", ok, "no connection loss within 1m of the delay")
	var took time.Duration
	if ok {
		_, cl, ok2 := p.waitLine(connectedLine, li, time.Minute)
		c.check("slow node: reconnected elsewhere", ok2 && !strings.Contains(cl.text, proxy.URL()), "%q", cl.text)
		took = logTime(cl).Sub(slowAt)
		c.check("slow node: moved on within the ack timeout", took <= 25*time.Second, "%v from the delay to the next CONNACK (ack timeout 15s)", took)
		c.check("slow node: the log says why", strings.Contains(ll.text, "no PUBACK within 15s"), "%q", ll.text)
	}
	finishFault(t, c, u, sub)
	return fmt.Sprintf("slow_node(+30s): moved_on=%s", took.Round(10*time.Millisecond))
}

// deadFirstURL: nothing listens at the first URL; the uplink connects to the next at once.
func deadFirstURL(t *testing.T, c *checks, w *world, sub *capture, urls []string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "tcp://" + l.Addr().String()
	l.Close()
	u, took, _ := faultUnit(t, w, "cluster-dead", append([]string{dead}, urls...))
	p := u.current()
	fb := fallbackText(p)
	c.check("dead first URL: moved on at once", took <= 3*time.Second, "first CONNACK %v after the start", took)
	c.check("dead first URL: the log says why", strings.Contains(fb, dead) && strings.Contains(fb, "connection refused"), "fallback line: %q", fb)
	finishFault(t, c, u, sub)
	return fmt.Sprintf("dead_first_url: uplink_connack=%s", took.Round(10*time.Millisecond))
}
