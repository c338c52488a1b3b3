package mqtttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireRabbitEnv is the environment variable that turns a missing rabbitmq-server from a
// skip into a test failure.
const RequireRabbitEnv = "SENTINEL_REQUIRE_RABBITMQ"

// RabbitMQ timing; tests of this package may change them.
var (
	// RabbitBootTimeout bounds how long a node (or the cluster) may take to boot.
	RabbitBootTimeout = 3 * time.Minute
	// RabbitStopTimeout bounds a clean stop before the node is killed.
	RabbitStopTimeout = 60 * time.Second
)

// rabbitServer is Debian's rabbitmq-server script (package rabbitmq-server); a package
// variable so tests can swap it.
var rabbitServer = "/usr/lib/rabbitmq/bin/rabbitmq-server"

// Cluster is a RabbitMQ cluster of nodes on one machine, each a child process with its own
// node name, ports (AMQP, Erlang distribution, MQTT) and data directory, all on 127.0.0.1,
// with its own EPMD on a free port. MQTT is RabbitMQ's bundled plugin (3.1.1), with durable
// (persistent-session) queues of type quorum: a subscription survives the loss of a node.
type Cluster struct {
	t    testing.TB
	dir  string
	env  []string
	epmd *exec.Cmd
	// Nodes are the cluster's nodes; Nodes[i] is named rmq<i+1>@localhost.
	Nodes []*Node
	// Boot is how long StartCluster took until every node was up and clustered.
	Boot time.Duration
}

// Node is one RabbitMQ node of a Cluster.
type Node struct {
	c                *Cluster
	Name             string // rmq1@localhost, ...
	dir              string
	amqp, dist, mqtt int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *markBuffer
}

// StartCluster starts n nodes (three for client-id tracking and quorum queues to survive
// one node's loss), waits until all run clustered, and registers their stop. It skips the
// test when rabbitmq-server is not installed (see RequireRabbitEnv).
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if _, err := os.Stat(rabbitServer); err != nil {
		if os.Getenv(RequireRabbitEnv) == "1" {
			t.Fatalf("mqtttest: %s: %v; install the Debian package: scripts/install-deps.sh cluster", rabbitServer, err)
		}
		t.Skipf("mqtttest: %s not installed (scripts/install-deps.sh cluster, or set %s=1 to make this fatal)", rabbitServer, RequireRabbitEnv)
	}
	c := &Cluster{t: t, dir: t.TempDir()}
	if err := c.setup(n); err != nil {
		t.Fatalf("mqtttest: rabbitmq cluster: %v", err)
	}
	t.Cleanup(c.stopAll)
	start := time.Now()
	// One node after another, each booted before the next starts: the MQTT plugin's
	// client-id tracking is a Raft cluster (mqtt_node) that a booting node joins once, and a
	// leader elected a moment before refuses the join (cluster_change_not_permitted) without
	// a retry. Booted together, the three nodes were seen to form a two-member mqtt_node;
	// the loss of one of those two then left no majority, and a node restarted after it
	// waited minutes in its boot for a leader (and new MQTT connections hung).
	for _, nd := range c.Nodes {
		if err := nd.launch(); err != nil {
			t.Fatalf("mqtttest: %v", err)
		}
		if err := nd.awaitBoot(start.Add(RabbitBootTimeout)); err != nil {
			t.Fatalf("mqtttest: %v\n%s output:\n%s", err, nd.Name, nd.Output())
		}
	}
	if err := c.awaitClustered(n, start.Add(RabbitBootTimeout)); err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	if err := c.awaitTracking(n, start.Add(RabbitBootTimeout)); err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	c.Boot = time.Since(start)
	return c
}

// TrackingMembers returns how many members the MQTT plugin's client-id tracking Raft
// cluster (mqtt_node) has, as the node nd's copy of it says.
func (c *Cluster) TrackingMembers(nd *Node) (int, error) {
	out, err := c.Ctl("-n", nd.Name, "eval", "{ok, M, _} = ra:members({mqtt_node, node()}), length(M).")
	if err != nil {
		return 0, fmt.Errorf("%s: ra:members of mqtt_node: %w: %s", nd.Name, err, strings.TrimSpace(out))
	}
	m, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		return 0, fmt.Errorf("%s: ra:members of mqtt_node answered %q", nd.Name, strings.TrimSpace(out))
	}
	return m, nil
}

// awaitTracking waits until every node's copy of the client-id tracking cluster has n
// members: with fewer, the loss of one node can leave it without a majority.
func (c *Cluster) awaitTracking(n int, deadline time.Time) error {
	for {
		var last error
		for _, nd := range c.Nodes {
			m, err := c.TrackingMembers(nd)
			if err == nil && m != n {
				err = fmt.Errorf("%s: the MQTT client-id tracking cluster (mqtt_node) has %d members, not %d", nd.Name, m, n)
			}
			if err != nil {
				last = err
				break
			}
		}
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return last
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// setup writes the Erlang cookie and each node's configuration, picks the ports and starts
// EPMD.
func (c *Cluster) setup(n int) error {
	home := filepath.Join(c.dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	// Every node and rabbitmqctl read the cookie from $HOME; it must be private.
	if err := os.WriteFile(filepath.Join(home, ".erlang.cookie"), []byte("SENTINELMQTTTEST"+strconv.Itoa(os.Getpid())), 0o400); err != nil {
		return err
	}
	ports, err := freePorts(1 + 3*n)
	if err != nil {
		return err
	}
	loopback := "-kernel inet_dist_use_interface {127,0,0,1}"
	c.env = append(os.Environ(),
		"HOME="+home,
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_EPMD_PORT="+strconv.Itoa(ports[0]),
		"RABBITMQ_CONF_ENV_FILE=/dev/null", // not the system's /etc/rabbitmq/rabbitmq-env.conf
		"RABBITMQ_CTL_ERL_ARGS="+loopback,
	)
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("rmq%d@localhost", i+1))
	}
	for i := range n {
		nd := &Node{c: c, Name: names[i], dir: filepath.Join(c.dir, fmt.Sprintf("n%d", i+1)),
			amqp: ports[1+3*i], dist: ports[2+3*i], mqtt: ports[3+3*i], out: &markBuffer{}}
		if err := os.MkdirAll(nd.dir, 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(nd.dir, "rabbitmq.conf"), nd.config(names), 0o600); err != nil {
			return err
		}
		c.Nodes = append(c.Nodes, nd)
	}
	bin, err := exec.LookPath("epmd")
	if err != nil {
		return fmt.Errorf("epmd (Debian package erlang-base): %w", err)
	}
	c.epmd = exec.Command(bin, "-port", strconv.Itoa(ports[0]), "-address", "127.0.0.1")
	c.epmd.Env = c.env
	c.epmd.SysProcAttr = sysProcAttr()
	if err := c.epmd.Start(); err != nil {
		return fmt.Errorf("start epmd: %w", err)
	}
	return waitPort(ports[0], 10*time.Second)
}

// config is a node's rabbitmq.conf: loopback listeners, the MQTT plugin with quorum
// durable queues and anonymous access (as the guest user), classic peer discovery.
func (nd *Node) config(names []string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "listeners.tcp.default = 127.0.0.1:%d\n", nd.amqp)
	fmt.Fprintf(&b, "mqtt.listeners.tcp.default = 127.0.0.1:%d\n", nd.mqtt)
	b.WriteString("mqtt.allow_anonymous = true\nmqtt.durable_queue_type = quorum\nloopback_users = none\n")
	b.WriteString("mqtt.tcp_listen_options.nodelay = true\n")
	b.WriteString("cluster_formation.peer_discovery_backend = classic_config\n")
	for i, n := range names {
		fmt.Fprintf(&b, "cluster_formation.classic_config.nodes.%d = %s\n", i+1, n)
	}
	b.WriteString("log.console = true\nlog.console.level = info\nlog.file = false\n")
	return b.Bytes()
}

// URL returns the node's MQTT listener, "tcp://127.0.0.1:PORT".
func (nd *Node) URL() string { return "tcp://127.0.0.1:" + strconv.Itoa(nd.mqtt) }

// Output returns what the node has logged, across restarts.
func (nd *Node) Output() string { return nd.out.String() }

// Running reports whether the node's process runs.
func (nd *Node) Running() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return false
	}
	select {
	case <-nd.done:
		return false
	default:
		return true
	}
}

// launch starts the node's process (in a process group of its own: the script, the Erlang
// VM and its helpers).
func (nd *Node) launch() error {
	cmd := exec.Command(rabbitServer)
	cmd.Env = append(append([]string(nil), nd.c.env...),
		"RABBITMQ_NODENAME="+nd.Name,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(nd.amqp),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(nd.dist),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(nd.dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(nd.dir, "advanced.config"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(nd.dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(nd.dir, "log"),
		"RABBITMQ_PID_FILE="+nd.pidFile(),
		"RABBITMQ_ENABLED_PLUGINS=rabbitmq_mqtt",
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(nd.dir, "enabled_plugins"),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
	)
	cmd.Stdout, cmd.Stderr = nd.out, nd.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	_ = os.Remove(nd.pidFile())
	nd.out.setMark()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", nd.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	nd.mu.Lock()
	nd.cmd, nd.done = cmd, done
	nd.mu.Unlock()
	return nil
}

func (nd *Node) pidFile() string { return filepath.Join(nd.dir, "rabbit.pid") }

// awaitBoot waits until this run of the node logged "Server startup complete" and its MQTT
// port accepts.
func (nd *Node) awaitBoot(deadline time.Time) error {
	nd.mu.Lock()
	done := nd.done
	nd.mu.Unlock()
	for {
		select {
		case <-done:
			return fmt.Errorf("%s exited during boot", nd.Name)
		default:
		}
		if strings.Contains(nd.out.sinceMark(), "Server startup complete") && dialOK(nd.mqtt) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not boot by %s", nd.Name, deadline.Format(time.TimeOnly))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// awaitClustered waits until rabbitmqctl reports n running nodes.
func (c *Cluster) awaitClustered(n int, deadline time.Time) error {
	for {
		out, err := c.Ctl("-n", c.Nodes[0].Name, "cluster_status", "--formatter", "json")
		if err == nil && strings.Count(between(out, `"running_nodes":[`, "]"), "@") == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster did not report %d running nodes: %v\n%s", n, err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// between returns the text of s between the first from and the next to after it.
func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i+len(from):]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return s
}

// Ctl runs rabbitmqctl with the cluster's environment and returns its output.
func (c *Cluster) Ctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(filepath.Dir(rabbitServer), "rabbitmqctl"), args...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Start starts a stopped node again and waits until it booted; it fails the test if it
// does not. Calling it while the node runs does nothing.
func (nd *Node) Start() {
	nd.c.t.Helper()
	if nd.Running() {
		return
	}
	if err := nd.launch(); err != nil {
		nd.c.t.Fatalf("mqtttest: %v", err)
	}
	if err := nd.awaitBoot(time.Now().Add(RabbitBootTimeout)); err != nil {
		nd.c.t.Fatalf("mqtttest: %v\noutput:\n%s", err, nd.out.sinceMark())
	}
}

// StartRetrying is Start with a boot budget of within per try: a node that has not booted by
// then is killed and started again, up to tries times in all. It returns how many extra
// tries it took, and fails the test when none booted. (A node whose restart waited minutes for
// the client-id tracking cluster's leader was the two-member mqtt_node that StartCluster now
// prevents; the retry stays for what else a loaded machine may do to a boot.)
func (nd *Node) StartRetrying(within time.Duration, tries int) int {
	nd.c.t.Helper()
	if nd.Running() {
		return 0
	}
	for i := 0; i < tries; i++ {
		if err := nd.launch(); err != nil {
			nd.c.t.Fatalf("mqtttest: %v", err)
		}
		err := nd.awaitBoot(time.Now().Add(within))
		if err == nil {
			return i
		}
		nd.c.t.Logf("mqtttest: %v (try %d of %d); the end of its output:\n%s", err, i+1, tries, lastLines(nd.out.sinceMark(), 15))
		nd.Kill()
	}
	nd.c.t.Fatalf("mqtttest: %s did not boot in %d tries of %v", nd.Name, tries, within)
	return tries
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// Stop stops the node cleanly (rabbitmqctl shutdown: listeners closed, connections closed,
// queues handed over) and waits for its processes to exit; past RabbitStopTimeout it is
// killed. It reports whether the stop was clean.
func (nd *Node) Stop() bool {
	if !nd.Running() {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), RabbitStopTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(filepath.Dir(rabbitServer), "rabbitmqctl"), "-n", nd.Name, "shutdown")
	cmd.Env = nd.c.env
	out, err := cmd.CombinedOutput()
	if err == nil && nd.wait(RabbitStopTimeout) {
		return true
	}
	nd.c.t.Logf("mqtttest: %s: clean stop failed (%v: %s); killing it", nd.Name, err, bytes.TrimSpace(out))
	nd.Kill()
	return false
}

// Kill kills the node's processes with SIGKILL (the Erlang VM first) and waits for them.
func (nd *Node) Kill() {
	nd.mu.Lock()
	cmd := nd.cmd
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	if b, err := os.ReadFile(nd.pidFile()); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // its own process group
	nd.wait(10 * time.Second)
}

// wait waits for the node's script to exit, and then for the process group to empty.
func (nd *Node) wait(d time.Duration) bool {
	nd.mu.Lock()
	cmd, done := nd.cmd, nd.done
	nd.mu.Unlock()
	if cmd == nil {
		return true
	}
	select {
	case <-done:
	case <-time.After(d):
		return false
	}
	deadline := time.Now().Add(d)
	for syscall.Kill(-cmd.Process.Pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// stopAll kills every node and EPMD (a test's end; nothing there is kept).
func (c *Cluster) stopAll() {
	for _, nd := range c.Nodes {
		nd.Kill()
	}
	if c.epmd != nil && c.epmd.Process != nil {
		_ = c.epmd.Process.Kill()
		_ = c.epmd.Wait()
	}
}

// freePorts returns n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func dialOK(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func waitPort(port int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for !dialOK(port) {
		if time.Now().After(deadline) {
			return errors.New("port " + strconv.Itoa(port) + " does not accept")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// markBuffer is a log buffer safe for concurrent use that remembers where the current run's
// output starts.
type markBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	from int
}

func (b *markBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *markBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// setMark starts a new run: sinceMark returns what is written from now on.
func (b *markBuffer) setMark() {
	b.mu.Lock()
	b.from = b.buf.Len()
	b.mu.Unlock()
}

func (b *markBuffer) sinceMark() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf.Bytes()[b.from:])
}
