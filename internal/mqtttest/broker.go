package mqtttest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing mosquitto binary from a skip
// into a test failure (set it to "1" in CI).
const RequireEnv = "SENTINEL_REQUIRE_MOSQUITTO"

// Timing tunables; tests of this package may shrink them.
var (
	// StartTimeout bounds how long Start waits for the port to accept connections.
	StartTimeout = 10 * time.Second
	// StopTimeout bounds how long Stop waits after SIGTERM before it kills the broker.
	StopTimeout = 5 * time.Second
)

// lookPath finds the mosquitto binary; a package variable so tests can swap it.
var lookPath = func() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("mosquitto not found in PATH, /usr/sbin or /usr/local/sbin")
}

// Broker is a Mosquitto child process listening on 127.0.0.1. Its methods other than URL,
// Port, Output and Running must be called from the test goroutine, since they may fail the
// test.
type Broker struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	opts Options

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
	out  *syncBuffer   // output of all runs, oldest first
}

// Options change the broker's configuration; the zero value is Start's broker.
type Options struct {
	// Persistence keeps sessions and queued messages across Stop and Start (saved to a file
	// in the broker's directory when it stops), so a persistent subscriber (see
	// SubscribePersistent) misses nothing while the broker is down.
	Persistence bool
	// TLS, when set, makes the listener TLS-only with these PEM files; URL then starts with
	// ssl://.
	TLS *TLSFiles
	// DenyAnonymous refuses every client that does not log in; with no password file, that
	// is every client ("not authorised").
	DenyAnonymous bool
	// Users, when set, are written (user name → password) to a Mosquitto password file with
	// mosquitto_passwd (hashed, as in the field) that the broker checks logins against;
	// with DenyAnonymous only they connect. Subscribers log in with SubOptions.Username.
	Users map[string]string
}

// TLSFiles are the PEM files of a TLS listener.
type TLSFiles struct {
	CAFile, CertFile, KeyFile string
	// RequireClientCert makes the broker ask for a client certificate signed by CAFile.
	RequireClientCert bool
}

// Start starts a broker on a free loopback port and registers a cleanup that stops it. It
// skips the test when mosquitto is not installed (see RequireEnv).
func Start(t testing.TB) *Broker {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) *Broker {
	t.Helper()
	bin, err := lookPath()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("mqtttest: %v; install the Debian package: apt-get install mosquitto", err)
		}
		t.Skipf("mqtttest: %v (install the Debian package mosquitto, or set %s=1 to make this fatal)", err, RequireEnv)
	}
	b := &Broker{t: t, bin: bin, dir: t.TempDir(), out: &syncBuffer{}, opts: opts}
	if len(opts.Users) > 0 {
		if err := b.writePasswords(); err != nil {
			t.Fatalf("mqtttest: %v", err)
		}
	}
	t.Cleanup(b.Stop)
	const tries = 5
	for i := 0; ; i++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("mqtttest: find a free port: %v", err)
		}
		b.port = port
		err = b.start()
		if err == nil {
			return b
		}
		// Another process may have taken the port between freePort and mosquitto's bind.
		if i == tries-1 {
			t.Fatalf("mqtttest: %v\nmosquitto output:\n%s", err, b.Output())
		}
	}
}

// URL returns the broker address as "tcp://127.0.0.1:PORT" ("ssl://..." with TLS).
func (b *Broker) URL() string {
	if b.opts.TLS != nil {
		return "ssl://127.0.0.1:" + strconv.Itoa(b.port)
	}
	return "tcp://127.0.0.1:" + strconv.Itoa(b.port)
}

// Port returns the TCP port the broker listens on; it stays the same across restarts.
func (b *Broker) Port() int { return b.port }

// Output returns everything mosquitto has written so far, across restarts.
func (b *Broker) Output() string { return b.out.String() }

// Running reports whether the broker process is running.
func (b *Broker) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return false
	}
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// Start starts the broker again on the same port after Stop. It fails the test if the
// broker does not come up. Calling it while the broker runs does nothing.
func (b *Broker) Start() {
	b.t.Helper()
	if b.Running() {
		return
	}
	// The old socket may linger for a moment; mosquitto sets SO_REUSEADDR, but retry anyway.
	deadline := time.Now().Add(StartTimeout)
	for {
		err := b.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mqtttest: restart on port %d: %v\nmosquitto output:\n%s", b.port, err, b.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Restart stops the broker and starts it again on the same port. With persistence off the
// new broker has no sessions, subscriptions or queued messages.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	b.Start()
}

// Stop terminates the broker (SIGTERM, then SIGKILL after StopTimeout) and waits for it to
// exit. It is safe to call when the broker is not running.
func (b *Broker) Stop() {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(StopTimeout):
		_ = cmd.Process.Kill()
		<-done
	}
}

// start writes the configuration and runs mosquitto, returning once the port accepts.
func (b *Broker) start() error {
	conf := filepath.Join(b.dir, "mosquitto.conf")
	var cfg bytes.Buffer
	fmt.Fprintf(&cfg, "listener %d 127.0.0.1\n", b.port)
	if b.opts.DenyAnonymous {
		cfg.WriteString("allow_anonymous false\n")
	} else {
		cfg.WriteString("allow_anonymous true\n")
	}
	if len(b.opts.Users) > 0 {
		fmt.Fprintf(&cfg, "password_file %s\n", b.passwordFile())
	}
	if t := b.opts.TLS; t != nil {
		fmt.Fprintf(&cfg, "cafile %s\ncertfile %s\nkeyfile %s\ntls_version tlsv1.2\n", t.CAFile, t.CertFile, t.KeyFile)
		if t.RequireClientCert {
			cfg.WriteString("require_certificate true\n")
		}
	}
	if b.opts.Persistence {
		fmt.Fprintf(&cfg, "persistence true\npersistence_location %s/\nautosave_interval 0\n", b.dir)
		cfg.WriteString("persistent_client_expiration 1h\n")
	} else {
		cfg.WriteString("persistence false\n")
	}
	cfg.WriteString("max_queued_messages 100000\n")
	cfg.WriteString("max_inflight_messages 0\n")
	// Without it mosquitto's small PUBACKs wait for the client's delayed ACK (Nagle): rounds
	// of ~40 ms that hide the uplink's own speed.
	cfg.WriteString("set_tcp_nodelay true\n")
	if os.Geteuid() == 0 {
		// Started as root, mosquitto drops to user "mosquitto" unless told otherwise.
		cfg.WriteString("user root\n")
	}
	cfg.WriteString("log_dest stderr\n")
	cfg.WriteString("log_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
	cfg.WriteString("connection_messages true\n")
	if err := os.WriteFile(conf, cfg.Bytes(), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}

	cmd := exec.Command(b.bin, "-c", conf)
	cmd.Stdout = b.out
	cmd.Stderr = b.out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", b.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port))
	deadline := time.Now().Add(StartTimeout)
	for {
		select {
		case <-done:
			return fmt.Errorf("mosquitto exited during start-up (%s)", cmd.ProcessState)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("mosquitto did not accept on %s within %v: %w", addr, StartTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.mu.Lock()
	b.cmd, b.done = cmd, done
	b.mu.Unlock()
	return nil
}

func (b *Broker) passwordFile() string { return filepath.Join(b.dir, "passwd") }

// writePasswords writes opts.Users to the broker's password file with mosquitto_passwd
// (from the same Debian package as mosquitto).
func (b *Broker) writePasswords() error {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		bin = "/usr/bin/mosquitto_passwd"
		if _, serr := os.Stat(bin); serr != nil {
			return fmt.Errorf("mosquitto_passwd not found (Debian package mosquitto): %w", err)
		}
	}
	users := make([]string, 0, len(b.opts.Users))
	for u := range b.opts.Users {
		users = append(users, u)
	}
	sort.Strings(users)
	for i, u := range users {
		args := []string{"-b", b.passwordFile(), u, b.opts.Users[u]}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("mosquitto_passwd for user %q: %v: %s", u, err, out)
		}
	}
	return nil
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
