package e2e_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/mqtttest"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/queue"
)

const qVenue, qDevice = "350582-0001", "q-gate-01"

// qTopic is where the queue tests' agent publishes passages.
var qTopic = "sentinel/v1/" + qVenue + "/" + qDevice + "/passage"

// newQueueWorld is newWorld, plus a cleanup that closes the scanner's input first: the
// scanner process's Wait waits for its stdin copy, which ends only when that pipe closes,
// and newWorld's own close runs after the process's stop (cleanups run last-in first-out).
func newQueueWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	t.Cleanup(func() { _ = w.Scan.(io.Closer).Close() })
	return w
}

// queueConfig is a reduced gate (no barrier, so scans flow fast) with short backoffs, no
// drain limit and the platform key at keyFile ("" for none). extraUplink goes inside the
// uplink mapping.
func queueConfig(w *world, brokers []string, keyFile, extraUplink string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "device: {id: %s, venue: \"%s\", style: reduced_gate}\n", qDevice, qVenue)
	fmt.Fprintf(&b, "scanners: {qr: {driver: serial, port: %s}}\n", w.Port)
	fmt.Fprintf(&b, "platform: {url: \"http://%s\"}\n", w.APIAddr)
	fmt.Fprintf(&b, "queue: {path: %s}\n", filepath.Join(w.Dir, "queue.db"))
	fmt.Fprintf(&b, "uplink: {brokers: [\"%s\"], backoff_base: 20ms, backoff_cap: 300ms, drain_rate: 0, drain_bytes_per_s: 0%s}\n",
		strings.Join(brokers, `", "`), extraUplink)
	if keyFile != "" {
		fmt.Fprintf(&b, "privacy: {platform_key_file: %s}\n", keyFile)
	}
	return b.String()
}

// feeder sends a known subject's token to the scanner every interval until stopped.
type feeder struct {
	stop chan struct{}
	done chan struct{}
	sent atomic.Int64
}

func feed(t *testing.T, w *world, every time.Duration) *feeder {
	f := &feeder{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-tick.C:
				if _, err := fmt.Fprintln(w.Scan, "HC-GREEN-FRESH"); err != nil {
					return
				}
				f.sent.Add(1)
			}
		}
	}()
	t.Cleanup(f.halt)
	return f
}

func (f *feeder) halt() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	select {
	case <-f.done:
	case <-time.After(5 * time.Second): // a write blocked on a full pty; the pipe closes at cleanup
	}
}

// stored reads every retained record of the outbox (read-only, also while the agent runs).
func stored(t *testing.T, path string) []queue.Entry {
	t.Helper()
	r, err := queue.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var es []queue.Entry
	if err := r.Entries(context.Background(), func(e queue.Entry) error { es = append(es, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return es
}

// queueStats runs `sentinel queue stats --json`.
func queueStats(t *testing.T, w *world) map[string]any {
	t.Helper()
	out, err := exec.Command(filepath.Join(w.Bins, "sentinel"), "queue", "stats", "--json", "--config", filepath.Join(w.Dir, "sentinel.yaml")).Output()
	if err != nil {
		t.Fatalf("queue stats: %v\n%s", err, out)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("queue stats --json: %v\n%s", err, out)
	}
	return m
}

// waitDrained waits until `sentinel queue stats` reports nothing pending.
func waitDrained(t *testing.T, w *world, within time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		m := queueStats(t, w)
		if m["pending"] == 0.0 {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("still pending after %v: %v", within, m)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// passages returns the passage records of msgs by id, and the seqs of their first
// occurrences in arrival order.
func passages(t *testing.T, msgs []mqtttest.Message) (map[string]record.Passage, []int64) {
	t.Helper()
	byID := make(map[string]record.Passage)
	var firsts []int64
	for _, m := range msgs {
		var r record.Passage
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			t.Fatalf("a record on %s is not JSON: %v", m.Topic, err)
		}
		if _, dup := byID[r.ID]; !dup {
			firsts = append(firsts, r.Seq)
		}
		byID[r.ID] = r
	}
	return byID, firsts
}

// inOrderClasses checks the delivery order docs/queue.md promises: the first occurrences
// are, connection by connection, a backlog in seq order overtaken by live records in seq
// order. With one outage that is: 1..P in order (before it), then the rest as a merge of
// two increasing runs P+1..H and H+1..N. It returns a description of the first violation.
func inOrderClasses(firsts []int64) string {
	p := 0
	for p < len(firsts) && firsts[p] == int64(p+1) {
		p++
	}
	rest := firsts[p:]
	for h := int64(p); h <= int64(len(firsts)); h++ {
		lo, hi, ok := int64(p), h, true
		for _, s := range rest {
			switch {
			case s <= h && s == lo+1:
				lo = s
			case s > h && s == hi+1:
				hi = s
			default:
				ok = false
			}
			if !ok {
				break
			}
		}
		if ok && lo == h && hi == int64(len(firsts)) {
			return ""
		}
	}
	return fmt.Sprintf("first occurrences after the first %d in order are not a backlog and live records each in seq order: %v", p, rest)
}

// noIDNumbers fails the test if any 18-character ID number appears in data (named what).
func noIDNumbers(t *testing.T, what string, data []byte) {
	t.Helper()
	if loc := idNumber.FindIndex(data); loc != nil {
		t.Errorf("%s holds an unmasked ID number at byte %d (%s)", what, loc[0], privacy.MaskID(string(data[loc[0]:loc[1]])))
	}
}

// TestE2EQueueBrokerRestart: the broker stops for a while under a steady scan load and comes
// back: every record arrives, with no gap in seq, in the documented order; the personal data
// is sealed (the platform opens it), and no ID number is anywhere: the database, its WAL, the
// logs, the MQTT payloads.
func TestE2EQueueBrokerRestart(t *testing.T) {
	broker := mqtttest.StartWith(t, mqtttest.Options{Persistence: true})
	sub := broker.SubscribeWith(t, qTopic, mqtttest.SubOptions{Persistent: true})
	w := newQueueWorld(t)
	pub, priv, err := privacy.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(w.Dir, "platform.pub")
	if err := os.WriteFile(keyFile, []byte(privacy.EncodeKey(*pub)), 0o644); err != nil {
		t.Fatal(err)
	}
	ag := w.agent(t, queueConfig(w, []string{broker.URL()}, keyFile, ""))
	if fi, err := os.Stat(filepath.Join(w.Dir, privacy.HashKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("hash key beside the database: %v (mode %v), want a 0600 file", err, fi)
	}
	f := feed(t, w, 20*time.Millisecond)
	sub.WaitN(20, 15*time.Second)

	broker.Stop()
	ag.waitFor(t, regexp.MustCompile(`uplink: connection lost`), 10*time.Second)
	during := time.Now()
	for time.Since(during) < 1500*time.Millisecond { // the outage; scans go on
		time.Sleep(100 * time.Millisecond)
	}
	broker.Start()
	ag.waitFor(t, regexp.MustCompile(`uplink: connected`), 10*time.Second)
	time.Sleep(500 * time.Millisecond) // live records while the backlog drains
	f.halt()
	st := waitDrained(t, w, 20*time.Second)
	es := stored(t, filepath.Join(w.Dir, "queue.db"))
	var want []queue.Entry
	for _, e := range es {
		if e.Stream == record.StreamPassage {
			want = append(want, e)
		}
	}
	msgs := sub.WaitN(len(want), 15*time.Second)
	got, firsts := passages(t, msgs)
	t.Logf("%d scans sent, %d records stored, %d messages received (%d distinct); stats %v", f.sent.Load(), len(want), len(msgs), len(got), st)

	for i, e := range want {
		if e.Seq != int64(i+1) {
			t.Fatalf("stored record %d has seq %d: a gap", i, e.Seq)
		}
		if _, ok := got[e.ID]; !ok {
			t.Fatalf("record seq %d (id %s) never arrived", e.Seq, e.ID)
		}
	}
	if len(got) != len(want) || len(want) < 60 {
		t.Fatalf("%d distinct records arrived, %d stored; want equal and at least 60", len(got), len(want))
	}
	if msg := inOrderClasses(firsts); msg != "" {
		t.Fatal(msg)
	}

	// Sealed to the platform's key: it opens to a real ID number (which the scans below
	// would have caught in plaintext), and the hash is there for look-ups.
	r := got[want[0].ID]
	who, err := privacy.Open(pub, priv, r.Subject.Sealed)
	if err != nil || !idNumber.MatchString(who.IDNumber) || r.Subject.Hash == "" || privacy.MaskID(who.IDNumber) != r.Subject.ID {
		t.Fatalf("sealed subject: %v; opened to %s, masked %s, hash %q", err, privacy.MaskID(who.IDNumber), r.Subject.ID, r.Subject.Hash)
	}

	// No ID number anywhere: the database and its WAL (while the agent runs), every stored
	// payload decoded, the MQTT payloads, the logs.
	for _, p := range []string{"queue.db", "queue.db-wal"} {
		b, err := os.ReadFile(filepath.Join(w.Dir, p))
		if err != nil && p == "queue.db" {
			t.Fatal(err)
		}
		noIDNumbers(t, p, b)
	}
	for _, e := range es {
		noIDNumbers(t, fmt.Sprintf("stored %s seq %d", e.Stream, e.Seq), e.Payload)
	}
	for i, m := range msgs {
		noIDNumbers(t, fmt.Sprintf("MQTT message %d", i), m.Payload)
	}
	ag.stop(t)
	noIDNumbers(t, "the agent's log", []byte(ag.output()))
	noIDNumbers(t, "the broker's log", []byte(broker.Output()))
}

// TestE2EQueueKill kills the agent with SIGKILL at random moments while scans flow, 20
// times: every record that was committed is delivered, the seqs have no gap, and the
// database passes integrity_check.
func TestE2EQueueKill(t *testing.T) {
	broker := mqtttest.Start(t)
	sub := broker.Subscribe(t, qTopic)
	w := newQueueWorld(t)
	cfg := queueConfig(w, []string{broker.URL()}, "", "")
	cfgPath := filepath.Join(w.Dir, "sentinel.yaml")
	ag := w.agent(t, cfg)
	f := feed(t, w, 5*time.Millisecond)
	passage := regexp.MustCompile(`msg=passage `)
	var logs strings.Builder
	const kills = 20
	for i := range kills {
		// Let at least one passage through, then kill at a random moment.
		ag.waitFor(t, passage, 15*time.Second)
		time.Sleep(time.Duration(rand.IntN(60)) * time.Millisecond)
		if err := ag.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-ag.done
		logs.WriteString(ag.output())
		if i < kills-1 {
			ag = start(t, nil, filepath.Join(w.Bins, "sentinel"), "run", "--config", cfgPath)
			ag.waitFor(t, regexp.MustCompile(`msg="pipeline up"`), 15*time.Second)
		}
	}
	// A last start delivers whatever the killed runs committed.
	ag = start(t, nil, filepath.Join(w.Bins, "sentinel"), "run", "--config", cfgPath)
	ag.waitFor(t, regexp.MustCompile(`msg="pipeline up"`), 15*time.Second)
	f.halt()
	waitDrained(t, w, 20*time.Second)
	ag.stop(t)
	logs.WriteString(ag.output())

	path := filepath.Join(w.Dir, "queue.db")
	r, err := queue.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.Close()
	es := stored(t, path)
	var want []queue.Entry
	for _, e := range es {
		if e.Stream == record.StreamPassage {
			want = append(want, e)
		}
	}
	msgs := sub.WaitN(len(want), 15*time.Second)
	got, _ := passages(t, msgs)
	for i, e := range want {
		if e.Seq != int64(i+1) {
			t.Fatalf("stored record %d has seq %d: a gap", i, e.Seq)
		}
		if e.DeliveredAt.IsZero() {
			t.Fatalf("seq %d still pending", e.Seq)
		}
		if _, ok := got[e.ID]; !ok {
			t.Fatalf("committed record seq %d never arrived", e.Seq)
		}
	}
	if n := strings.Count(logs.String(), "pipeline up"); n != kills+1 {
		t.Fatalf("%d starts logged, want %d", n, kills+1)
	}
	t.Logf("%d kills, %d scans sent, %d records committed and delivered, %d messages (duplicates included)", kills, f.sent.Load(), len(want), len(msgs))
}

// TestE2EQueueFailover: the first broker dies; the agent goes on with the second.
func TestE2EQueueFailover(t *testing.T) {
	a, b := mqtttest.Start(t), mqtttest.Start(t)
	subB := b.Subscribe(t, qTopic)
	w := newQueueWorld(t)
	ag := w.agent(t, queueConfig(w, []string{a.URL(), b.URL()}, "", ""))
	ag.waitFor(t, regexp.MustCompile(`uplink: connected.*`+regexp.QuoteMeta(a.URL())), 10*time.Second)
	f := feed(t, w, 20*time.Millisecond)
	ag.waitFor(t, regexp.MustCompile(`msg=passage `), 10*time.Second)
	a.Stop()
	ag.waitFor(t, regexp.MustCompile(`uplink: using a fallback broker.*`+regexp.QuoteMeta(b.URL())), 10*time.Second)
	n := len(subB.WaitN(10, 10*time.Second))
	f.halt()
	waitDrained(t, w, 15*time.Second)
	if n < 10 {
		t.Fatalf("the second broker got %d records, want at least 10", n)
	}
	ag.stop(t)
}

// TestE2EQueueTLS: a TLS broker with a test CA. With another CA the agent refuses and says
// why; with the right one it delivers what it stored meanwhile.
func TestE2EQueueTLS(t *testing.T) {
	w := newQueueWorld(t)
	ca := mqtttest.NewCA(t, w.Dir, "test-ca")
	wrong := mqtttest.NewCA(t, t.TempDir(), "wrong-ca")
	cert, key := ca.Issue(t, "broker")
	broker := mqtttest.StartWith(t, mqtttest.Options{TLS: &mqtttest.TLSFiles{CAFile: ca.CertFile, CertFile: cert, KeyFile: key}})
	sub := broker.SubscribeWith(t, qTopic, mqtttest.SubOptions{TLS: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}})

	ag := w.agent(t, queueConfig(w, []string{broker.URL()}, "", ", tls: {ca_file: "+wrong.CertFile+"}"))
	line := ag.waitFor(t, regexp.MustCompile(`uplink: no broker reachable`), 10*time.Second)
	if !strings.Contains(line, "certificate") || !strings.Contains(line, "uplink.tls.ca_file") {
		t.Fatalf("the refusal does not say why: %s", line)
	}
	fmt.Fprintln(w.Scan, "HC-GREEN-FRESH")
	ag.waitFor(t, regexp.MustCompile(`msg=passage `), 10*time.Second)
	ag.stop(t)

	ag = w.agent(t, queueConfig(w, []string{broker.URL()}, "", ", tls: {ca_file: "+ca.CertFile+"}"))
	ag.waitFor(t, regexp.MustCompile(`uplink: connected`), 10*time.Second)
	if got := sub.WaitN(1, 10*time.Second); len(got) != 1 {
		t.Fatalf("the stored record did not arrive over TLS (%d messages)", len(got))
	}
	waitDrained(t, w, 10*time.Second)
	ag.stop(t)
}

// TestE2EQueueCredentialFiles: a broker with a Mosquitto password file and no anonymous
// access. With a wrong password in uplink.password_file the agent says the broker refused the
// credentials (naming the keys, never the password) and keeps retrying while passages are
// stored; with the right one it connects and delivers them.
func TestE2EQueueCredentialFiles(t *testing.T) {
	w := newQueueWorld(t)
	const user, pass, wrong = "q-gate-01", "Right-Pa55word", "Wrong-Pa55word"
	broker := mqtttest.StartWith(t, mqtttest.Options{DenyAnonymous: true, Users: map[string]string{user: pass, "platform": "platform-pw"}})
	sub := broker.SubscribeWith(t, qTopic, mqtttest.SubOptions{Username: "platform", Password: "platform-pw"})
	userFile, passFile := filepath.Join(w.Dir, "mqtt-user"), filepath.Join(w.Dir, "mqtt-pass")
	if err := os.WriteFile(userFile, []byte(user+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := fmt.Sprintf(", username_file: %s, password_file: %s", userFile, passFile)

	if err := os.WriteFile(passFile, []byte(wrong+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ag := w.agent(t, queueConfig(w, []string{broker.URL()}, "", creds))
	line := ag.waitFor(t, regexp.MustCompile(`uplink: no broker reachable`), 10*time.Second)
	if !strings.Contains(line, "refused the credentials (uplink.username_file, uplink.password_file)") {
		t.Fatalf("the refusal does not say why: %s", line)
	}
	fmt.Fprintln(w.Scan, "HC-GREEN-FRESH")
	ag.waitFor(t, regexp.MustCompile(`msg=passage `), 10*time.Second)
	// Retried with backoff (DEBUG per attempt is below the agent's log level): the broker
	// sees more than one refused login.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(broker.Output(), "not authorised") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the login was not retried; broker output:\n%s", broker.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ag.stop(t)
	if strings.Contains(ag.output(), wrong) || strings.Contains(ag.output(), pass) {
		t.Fatal("a password appears in the agent's log")
	}

	if err := os.WriteFile(passFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ag = w.agent(t, queueConfig(w, []string{broker.URL()}, "", creds))
	ag.waitFor(t, regexp.MustCompile(`uplink: connected`), 10*time.Second)
	if got := sub.WaitN(1, 10*time.Second); len(got) != 1 {
		t.Fatalf("the stored record did not arrive (%d messages)", len(got))
	}
	waitDrained(t, w, 10*time.Second)
	ag.stop(t)
}

// TestE2EQueueForeignFile: a file at queue.path that is not a Sentinel queue stops the agent
// with exit 1 and a message naming the file and what to do; the file is kept as it was.
func TestE2EQueueForeignFile(t *testing.T) {
	bins, dir := binDir(t), t.TempDir()
	db := filepath.Join(dir, "queue.db")
	garbage := []byte(strings.Repeat("this is somebody's notes, not a queue\n", 50))
	if err := os.WriteFile(db, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "sentinel.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`device: {id: g1, venue: v1, style: reduced_gate}
scanners: {qr: {driver: serial, port: /dev/null}}
platform: {url: "http://127.0.0.1:1"}
queue: {path: %s}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
`, db)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(bins, "sentinel"), "run", "--config", cfg).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("sentinel run on a foreign queue file: %v, want exit 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "queue.path") || !strings.Contains(string(out), db) || !strings.Contains(string(out), "move it aside") {
		t.Fatalf("the error does not name the key, the file and what to do:\n%s", out)
	}
	if b, _ := os.ReadFile(db); string(b) != string(garbage) {
		t.Fatal("the foreign file was modified")
	}
}
