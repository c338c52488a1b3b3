package queue

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/mqtttest"
)

// Faults of a broker list, against real brokers (Mosquitto) and paho: a node that accepts
// connections and never answers CONNECT, a node whose PUBACKs come late (a delaying proxy),
// a dead first entry. The uplink must move on within its configured timeouts and say why.
// Deadlines are asserted against the configured budget with a generous margin.

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// logLine returns the first line of log that contains s, or "".
func logLine(log, s string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// faultUplink runs an uplink over brokers with the given timeouts and returns it with its
// deliveries and log.
func faultUplink(t *testing.T, o *Outbox, brokers []string, connect, ack time.Duration) (*Uplink, *deliveries, *syncBuffer) {
	t.Helper()
	d := newDeliveries()
	log, logs := testLogger(t)
	u := NewUplink(o, UplinkConfig{
		Brokers: brokers, ClientID: "sentinel-fault-" + strings.ToLower(t.Name()),
		BackoffBase: 5 * time.Millisecond, BackoffCap: 50 * time.Millisecond,
		ConnectTimeout: connect, AckTimeout: ack,
		OnDelivered: d.add, Logger: log,
	})
	runUplink(t, u)
	return u, d, logs
}

// TestUplinkSilentBrokerMovesOn: the first broker accepts the TCP connection and never
// answers CONNECT. The uplink gives it up after ConnectTimeout (once: not twice, as paho's
// fallback to MQTT 3.1 would), connects to the second, says why, and tries the silent one
// last from then on (demoted), so a reconnect does not pay the timeout again.
func TestUplinkSilentBrokerMovesOn(t *testing.T) {
	const connectTimeout = 2 * time.Second
	silent := mqtttest.StartSilent(t)
	broker := mqtttest.Start(t)
	proxy := mqtttest.StartProxy(t, strings.TrimPrefix(broker.URL(), "tcp://")) // to drop the connection
	o, _ := openTemp(t, Options{})
	mustAppend(t, o, "s")
	start := time.Now()
	_, d, logs := faultUplink(t, o, []string{silent.URL(), proxy.URL()}, connectTimeout, 5*time.Second)
	d.wait(t, 1, 4*connectTimeout)
	took := time.Since(start)
	// Budget: one ConnectTimeout on the silent node, then a loopback connect (generous margin).
	// Paho's default protocol fallback tried MQTT 3.1 on a second connection, with a fresh
	// timeout.
	if took > connectTimeout*16/10 {
		t.Errorf("first delivery after %v; the silent broker should cost one connect timeout (%v)", took, connectTimeout)
	}
	if n := silent.Accepted(); n != 1 {
		t.Errorf("the silent broker got %d connections for one attempt (a retry with MQTT 3.1?)", n)
	}
	log := logs.String()
	for _, want := range []string{"using a fallback broker", "no CONNACK within 2s", "did not answer CONNECT", "broker demoted", silent.URL()} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
	}

	// A reconnect goes to the healthy broker first: no second wait on the silent one.
	accepted := silent.Accepted()
	reconnectStart := time.Now()
	proxy.Drop()
	mustAppend(t, o, "s")
	d.wait(t, 2, 4*connectTimeout)
	if took := time.Since(reconnectStart); took > connectTimeout/2 {
		t.Errorf("the reconnect took %v: the demoted silent broker was tried first", took)
	}
	if n := silent.Accepted(); n != accepted {
		t.Errorf("the silent broker got %d more connection attempts after it was demoted", n-accepted)
	}
	if n := strings.Count(logs.String(), "uplink: connected"); n != 2 {
		t.Errorf("%d connections logged, want 2:\n%s", n, logs.String())
	}
}

// TestUplinkSlowBrokerMovesOn: the first broker's PUBACKs come late (a proxy delays what it
// sends). Within AckTimeout the uplink goes on with it, slowly; past it the uplink ends the
// connection, says why, demotes the broker and delivers through the second, losing nothing.
func TestUplinkSlowBrokerMovesOn(t *testing.T) {
	const ackTimeout = time.Second
	a, b := mqtttest.Start(t), mqtttest.Start(t)
	colA, colB := a.Subscribe(t, "sentinel/#"), b.Subscribe(t, "sentinel/#")
	proxy := mqtttest.StartProxy(t, strings.TrimPrefix(a.URL(), "tcp://"))
	o, _ := openTemp(t, Options{})
	u, d, logs := faultUplink(t, o, []string{proxy.URL(), b.URL()}, 5*time.Second, ackTimeout)
	waitUntil(t, 10*time.Second, "connected through the proxy", u.Connected)

	// Slow but within the budget: delivered through the slow broker, no reconnect.
	proxy.SetDelay(ackTimeout / 4)
	for range 10 {
		mustAppend(t, o, "s")
	}
	d.wait(t, 10, 10*time.Second)
	if strings.Contains(logs.String(), "connection lost") || len(colA.WaitN(10, 5*time.Second)) < 10 {
		t.Fatalf("a slow broker within the ack timeout should keep the connection and get every record:\n%s", logs.String())
	}

	// Slower than the budget: moves on to the second broker.
	proxy.SetDelay(10 * ackTimeout)
	start := time.Now()
	for range 10 {
		mustAppend(t, o, "s")
	}
	got := d.wait(t, 20, 10*ackTimeout)
	if took := time.Since(start); took > 3*ackTimeout {
		t.Errorf("moved on after %v; budget: the ack timeout (%v) and a reconnect", took, ackTimeout)
	}
	for i, e := range got {
		if e.Seq != int64(i+1) {
			t.Fatalf("delivery %d is seq %d", i, e.Seq)
		}
	}
	if n := len(colB.WaitN(10, 5*time.Second)); n < 10 {
		t.Errorf("the second broker got %d of the 10 records", n)
	}
	log := logs.String()
	for _, want := range []string{"no PUBACK within 1s", "broker demoted"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
	}
	if l := logLine(log, "using a fallback broker"); !strings.Contains(l, "broker="+b.URL()) || !strings.Contains(l, "demoted="+proxy.URL()) {
		t.Errorf("the fallback line does not name the broker used and the one demoted: %q", l)
	}
}

// TestUplinkDeadFirstBroker: nothing listens at the first URL; the uplink connects to the
// second at once and says why.
func TestUplinkDeadFirstBroker(t *testing.T) {
	broker := mqtttest.Start(t)
	dead := fmt.Sprintf("tcp://127.0.0.1:%d", closedPort(t))
	o, _ := openTemp(t, Options{})
	mustAppend(t, o, "s")
	start := time.Now()
	_, d, logs := faultUplink(t, o, []string{dead, broker.URL()}, 5*time.Second, 5*time.Second)
	d.wait(t, 1, 10*time.Second)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("first delivery after %v; a refused first broker costs no timeout", took)
	}
	log := logs.String()
	if !strings.Contains(log, "using a fallback broker") || !strings.Contains(log, dead) || !strings.Contains(log, "connection refused") {
		t.Errorf("the log does not name the dead broker and why:\n%s", log)
	}
	if strings.Contains(log, "broker demoted") {
		t.Errorf("a refused broker costs nothing and should not be demoted:\n%s", log)
	}
}

// TestUplinkDemotion: a broker that did not answer in time is tried after the others for
// DemoteFor, then in its configured place again; a refused one keeps its place.
func TestUplinkDemotion(t *testing.T) {
	o, _ := openTemp(t, Options{})
	slowDials := 0
	fb := &fakeBroker{refuse: func(_ int, broker string) error {
		if broker == "tcp://slow:1883" {
			slowDials++
		}
		switch {
		case broker == "tcp://slow:1883" && slowDials == 1:
			return fmt.Errorf("%w: no CONNACK within 5s", errNoAnswer)
		case broker == "tcp://refusing:1883":
			return errors.New("connection refused")
		}
		return nil
	}}
	log, logs := testLogger(t)
	u := NewUplink(o, fastBackoff(UplinkConfig{
		Brokers:   []string{"tcp://refusing:1883", "tcp://slow:1883", "tcp://ok:1883"},
		DemoteFor: 300 * time.Millisecond, Logger: log,
	}))
	u.dial = fb.dial
	runUplink(t, u)
	waitUntil(t, 5*time.Second, "connected", u.Connected)
	dials := func() []string { fb.mu.Lock(); defer fb.mu.Unlock(); return append([]string(nil), fb.dials...) }
	if got := fmt.Sprint(dials()); got != "[tcp://refusing:1883 tcp://slow:1883 tcp://ok:1883]" {
		t.Fatalf("first round dialled %s", got)
	}
	drop := func() {
		fb.mu.Lock()
		c := fb.conns[len(fb.conns)-1]
		fb.mu.Unlock()
		c.drop()
		waitUntil(t, 5*time.Second, "reconnected", func() bool { fb.mu.Lock(); defer fb.mu.Unlock(); return len(fb.conns) > c.n })
	}
	drop() // within DemoteFor: refusing, ok (slow is last and not reached)
	if got := fmt.Sprint(dials()[3:]); got != "[tcp://refusing:1883 tcp://ok:1883]" {
		t.Fatalf("while demoted, the round dialled %s; want the slow broker last", got)
	}
	if got := fmt.Sprint(u.BrokerOrder()); got != "[tcp://refusing:1883 tcp://ok:1883 tcp://slow:1883]" {
		t.Fatalf("BrokerOrder while demoted = %s", got)
	}
	time.Sleep(350 * time.Millisecond) // DemoteFor passes
	n := len(dials())
	drop() // the slow broker has its place back (and answers now)
	if got := fmt.Sprint(dials()[n:]); got != "[tcp://refusing:1883 tcp://slow:1883]" {
		t.Fatalf("after DemoteFor, the round dialled %s; want the configured order", got)
	}
	if got := fmt.Sprint(u.BrokerOrder()); got != "[tcp://refusing:1883 tcp://slow:1883 tcp://ok:1883]" {
		t.Fatalf("BrokerOrder after DemoteFor = %s", got)
	}
	if c := strings.Count(logs.String(), "broker demoted"); c != 1 {
		t.Fatalf("%d demotion lines, want 1:\n%s", c, logs.String())
	}
}

// timeoutErr is a net.Error that timed out.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestExplainConnectTimeouts(t *testing.T) {
	dial := fmt.Errorf("network Error : %w", &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}})
	read := fmt.Errorf("network Error : %w", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded})
	eof := errors.New("network Error : EOF")
	for _, c := range []struct {
		err     error
		want    string
		noAnswr bool
	}{
		{dial, "no TCP connection within 3s", true},
		{read, "no CONNACK within 3s", true},
		{eof, "closed the connection before CONNACK", false},
	} {
		got := explainConnect(c.err, 3*time.Second)
		if !strings.Contains(got.Error(), c.want) || errors.Is(got, errNoAnswer) != c.noAnswr || !errors.Is(got, c.err) {
			t.Errorf("explainConnect(%v) = %v (no answer: %v); want %q, no answer %v", c.err, got, errors.Is(got, errNoAnswer), c.want, c.noAnswr)
		}
	}
}

// lostConn is a conn that reports why it was lost.
type lostConn struct {
	fakeConn
	why error
}

func (c *lostConn) LostReason() error { return c.why }

func TestLostErrorKeepalive(t *testing.T) {
	err := lostError(&lostConn{why: errors.New("pingresp not received, disconnecting")})
	if !errors.Is(err, errNoAnswer) || !errors.Is(err, errConnLost) || !strings.Contains(err.Error(), "PINGRESP") {
		t.Fatalf("lostError for a silent keepalive = %v; want errConnLost and errNoAnswer", err)
	}
	if err := lostError(&lostConn{why: errors.New("EOF")}); errors.Is(err, errNoAnswer) {
		t.Fatalf("lostError for EOF = %v; a closed connection is not a silent broker", err)
	}
}
