package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/mqtttest"
)

// binDir holds the built sentinel and sentinel-sim: SENTINEL_BIN_DIR (make test sets it), or
// a fresh build.
func binDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("SENTINEL_BIN_DIR"); d != "" {
		for _, b := range []string{"sentinel", "sentinel-sim"} {
			if _, err := os.Stat(filepath.Join(d, b)); err != nil {
				t.Fatalf("SENTINEL_BIN_DIR=%s lacks %s: run make build", d, b)
			}
		}
		return d
	}
	d := t.TempDir()
	for _, b := range []string{"sentinel", "sentinel-sim"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(d, b), "github.com/sentinel-edge/sentinel/cmd/"+b).CombinedOutput()
		if err != nil {
			t.Fatalf("build %s: %v\n%s", b, err, out)
		}
	}
	return d
}

// proc is a child process whose standard error is captured.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	lines  chan string
	done   chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func start(t *testing.T, stdin io.Reader, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), lines: make(chan string, 1024), done: make(chan struct{})}
	p.cmd.Stdin = stdin
	p.cmd.WaitDelay = 5 * time.Second // a stdin pipe left open must not hang Wait
	pr, pw := io.Pipe()
	p.cmd.Stderr = pw
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", filepath.Base(name), err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			_, _ = p.Write(append(sc.Bytes(), '\n'))
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() { _ = p.cmd.Wait(); pw.Close(); close(p.done) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM and waits; it fails the test if the process does not exit in time.
func (p *proc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop within 10s of SIGINT", filepath.Base(p.cmd.Path))
	}
}

// waitFor waits for a stderr line matching re.
func (p *proc) waitFor(t *testing.T, re *regexp.Regexp, within time.Duration) string {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case l := <-p.lines:
			if re.MatchString(l) {
				return l
			}
		case <-p.done:
			t.Fatalf("%s exited before %q:\n%s", filepath.Base(p.cmd.Path), re, p.output())
		case <-deadline:
			t.Fatalf("no %q from %s within %s:\n%s", re, filepath.Base(p.cmd.Path), within, p.output())
		}
	}
}

// waitOutput waits until the output so far holds a line matching re, without taking lines
// from those waitFor reads: what the process logged while it started (the uplink may connect
// before the pipeline is up) stays there for the test's own waits.
func (p *proc) waitOutput(t *testing.T, re *regexp.Regexp, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !re.MatchString(p.output()) {
		select {
		case <-p.done:
			t.Fatalf("%s exited before %q:\n%s", filepath.Base(p.cmd.Path), re, p.output())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q from %s within %s:\n%s", re, filepath.Base(p.cmd.Path), within, p.output())
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// world is the outside world of one agent under test: the built binaries, the reference
// platform over HTTP and a pty scanner fed line by line through Scan.
type world struct {
	Bins    string
	Dir     string
	APIAddr string // host:port of the reference platform
	Port    string // the scanner's pty path
	Scan    io.Writer
}

// newWorld generates a population, starts the platform and a pty scanner (driven through
// w.Scan, one token per line) and registers their stop.
func newWorld(t *testing.T, apiArgs ...string) *world {
	t.Helper()
	w := &world{Bins: binDir(t), Dir: t.TempDir()}
	sim := filepath.Join(w.Bins, "sentinel-sim")
	pop := filepath.Join(w.Dir, "population.csv")
	if out, err := exec.Command(sim, "population", "--out", pop).CombinedOutput(); err != nil {
		t.Fatalf("population: %v\n%s", err, out)
	}
	api := start(t, nil, sim, append([]string{"api", "--listen", "127.0.0.1:0", "--population", pop}, apiArgs...)...)
	w.APIAddr = regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`).FindStringSubmatch(api.waitFor(t, regexp.MustCompile(`listening on`), 10*time.Second))[1]
	w.Port = filepath.Join(w.Dir, "ttyQR")
	stdinR, stdinW := io.Pipe()
	w.Scan = stdinW
	start(t, stdinR, sim, "scan", "--port", w.Port, "--tokens", "-", "--rate", "0", "--eol", "crlf").
		waitFor(t, regexp.MustCompile(`port ready`), 10*time.Second)
	t.Cleanup(func() { stdinW.Close() }) // runs before the scanner's stop (cleanups run last first)
	return w
}

// agent writes cfg to the world's directory, checks it and starts the agent on it; it returns
// once the pipeline is up.
func (w *world) agent(t *testing.T, cfg string) *proc {
	t.Helper()
	return runAgent(t, filepath.Join(w.Bins, "sentinel"), w.Dir, cfg)
}

// runAgent writes cfg to dir/sentinel.yaml, checks it with bin and starts bin run on it; it
// returns once the pipeline is up.
func runAgent(t *testing.T, bin, dir, cfg string) *proc {
	t.Helper()
	path := filepath.Join(dir, "sentinel.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check", "--config", path).CombinedOutput(); err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	ag := start(t, nil, bin, "run", "--config", path)
	ag.waitOutput(t, regexp.MustCompile(`msg="pipeline up"`), 15*time.Second)
	return ag
}

// idNumber finds an 18-character ID number: personal data that must never leave unmasked.
var idNumber = regexp.MustCompile(`\b\d{17}[\dXx]\b`)

// TestE2EPassages runs the built binaries as processes: Mosquitto, the reference platform,
// a pty scanner, the agent and a subscriber. Every scan must yield exactly one delivered
// record with the right verdict and reason.
func TestE2EPassages(t *testing.T) {
	broker := mqtttest.Start(t)
	w := newWorld(t)
	const venue, device = "350582-0001", "e2e-gate-01"
	topic := "sentinel/v1/" + venue + "/" + device + "/passage"
	sub := broker.Subscribe(t, topic)
	ag := w.agent(t, fmt.Sprintf(`device: {id: %s, venue: "%s", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: %s, baud: 9600}
platform: {url: "http://%s", timeout: 800ms}
policy: {health_codes: [green], nat_max_age: 72h}
barrier: {driver: fake, pulse: 300ms}
queue: {path: %s}
uplink: {brokers: ["%s"], topic_prefix: sentinel/v1}
`, device, venue, w.Port, w.APIAddr, filepath.Join(w.Dir, "queue.db"), broker.URL()))

	cases := []struct{ token, verdict, reason, gate string }{
		{"HC-GREEN-FRESH", "pass", "ok", "opened"},
		{"HC-YELLOW", "deny", "health_code_yellow", "not_opened"},
		{"HC-RED", "deny", "health_code_red", "not_opened"},
		{"HC-GREEN-OLD", "deny", "nat_expired", "not_opened"},
		{"HC-GREEN-NONAT", "deny", "nat_missing", "not_opened"},
		{"HC-GREEN-POS", "deny", "nat_positive", "not_opened"},
		{"HC-UNKNOWN-0001", "deny", "unknown_credential", "not_opened"},
		{"HC BAD SCAN", "deny", "malformed_scan", "not_opened"},
	}
	for _, c := range cases {
		if _, err := fmt.Fprintln(w.Scan, c.token); err != nil {
			t.Fatal(err)
		}
		// One at a time, so each record is known to be this scan's.
		ag.waitFor(t, regexp.MustCompile(`msg=passage `), 10*time.Second)
	}
	msgs := sub.WaitN(len(cases), 15*time.Second)
	time.Sleep(300 * time.Millisecond) // room for a duplicate to show up
	msgs = sub.Messages()
	if len(msgs) != len(cases) {
		t.Fatalf("got %d records for %d scans", len(msgs), len(cases))
	}
	seen := map[string]bool{}
	for i, m := range msgs {
		if m.Topic != topic {
			t.Errorf("record %d on topic %q, want %q", i, m.Topic, topic)
		}
		if idNumber.Match(m.Payload) {
			t.Errorf("record %d carries an unmasked ID number", i)
		}
		var r record.Passage
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			t.Fatalf("record %d is not JSON: %v", i, err)
		}
		c := cases[i]
		if r.Verdict != c.verdict || r.Reason != c.reason || r.Gate != c.gate {
			t.Errorf("scan %d (%s): record %s/%s gate=%s, want %s/%s gate=%s", i, c.token, r.Verdict, r.Reason, r.Gate, c.verdict, c.reason, c.gate)
		}
		if r.Seq != int64(i+1) {
			t.Errorf("record %d has seq %d, want %d", i, r.Seq, i+1)
		}
		if seen[r.ID] || r.ID == "" {
			t.Errorf("record %d: id %q empty or repeated", i, r.ID)
		}
		seen[r.ID] = true
		if r.Mode != "online" || r.Credential != "qr" || r.Device != device || !strings.HasPrefix(r.Policy, "sha256:") {
			t.Errorf("record %d: mode=%s credential=%s device=%s policy=%s", i, r.Mode, r.Credential, r.Device, r.Policy)
		}
		if ts, err := time.Parse(time.RFC3339, r.TS); err != nil || ts.Location() != time.UTC {
			t.Errorf("record %d: ts %q is not RFC 3339 UTC", i, r.TS)
		}
		known := c.reason != "unknown_credential" && c.reason != "malformed_scan"
		if known && !regexp.MustCompile(`^\d{4}\*{10}[\dX]{4}$`).MatchString(r.Subject.ID) {
			t.Errorf("record %d: subject id %q is not masked as 4+10*+4", i, r.Subject.ID)
		}
		if known && !regexp.MustCompile(`^.\*$`).MatchString(r.Subject.Name) {
			t.Errorf("record %d: subject name %q is not masked as first character and *", i, r.Subject.Name)
		}
	}

	// Measured: scan to barrier command, from the agent's own log.
	for _, m := range regexp.MustCompile(`scan_to_gate_ms=([\d.]+)`).FindAllStringSubmatch(ag.output(), -1) {
		t.Logf("scan_to_gate_ms=%s", m[1])
	}
	ag.stop(t)
	if idNumber.MatchString(ag.output()) {
		t.Error("the agent's log carries an unmasked ID number")
	}

	// After a clean stop every record is marked delivered in the outbox.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(w.Dir, "queue.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pending, total int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*), COALESCE(SUM(delivered_at IS NULL),0) FROM outbox WHERE stream='passage'`).Scan(&total, &pending); err != nil {
		t.Fatal(err)
	}
	if total != len(cases) || pending != 0 {
		t.Errorf("outbox: %d passages, %d pending; want %d, 0", total, pending, len(cases))
	}
}

// TestE2EBrokerDownAtStart: an unreachable broker is not fatal; records wait in SQLite and
// go up once the broker is there.
func TestE2EBrokerDownAtStart(t *testing.T) {
	broker := mqtttest.Start(t)
	broker.Stop()
	w := newWorld(t)
	dir := w.Dir
	ag := w.agent(t, fmt.Sprintf(`device: {id: e2e-02, venue: v1, style: reduced_gate}
scanners: {qr: {driver: serial, port: %s}}
platform: {url: "http://%s"}
queue: {path: %s}
uplink: {brokers: ["%s"]}
`, w.Port, w.APIAddr, filepath.Join(dir, "queue.db"), broker.URL()))
	for _, tok := range []string{"HC-GREEN-FRESH", "HC-RED", "HC-GREEN-FRESH"} {
		fmt.Fprintln(w.Scan, tok)
		l := ag.waitFor(t, regexp.MustCompile(`msg=passage `), 10*time.Second)
		if !strings.Contains(l, "gate=no_barrier") {
			t.Errorf("reduced gate passage line lacks gate=no_barrier: %s", l)
		}
	}
	broker.Start()
	// The records reach the broker once the uplink reconnects; the outbox marks each delivered
	// only on its PUBACK.
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "queue.db")+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		var pending int
		err = db.QueryRow(`SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL`).Scan(&pending)
		db.Close()
		if err == nil && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records still pending 30s after the broker came up (err %v):\n%s", err, ag.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
