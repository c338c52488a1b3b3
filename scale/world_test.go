package scale

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/sentinel-edge/sentinel/queue"
)

const venue = "350582-0001"

var (
	pipelineUp = regexp.MustCompile(`msg="pipeline up"`)
	listening  = regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
	portReady  = regexp.MustCompile(`port ready`)
)

// world is what the agents under test talk to: the built binaries, a synthetic population
// and one reference platform (sentinel-sim api, unsigned requests) serving every agent.
type world struct {
	bins    string
	dir     string
	tokens  string // token list for the scanners
	apiAddr string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{bins: binDir(t), dir: artifactDir(t, "world")}
	sim := filepath.Join(w.bins, "sentinel-sim")
	pop := filepath.Join(w.dir, "population.csv")
	w.tokens = filepath.Join(w.dir, "tokens.txt")
	if out, err := exec.Command(sim, "population", "--out", pop, "--tokens-out", w.tokens, "--random", "200").CombinedOutput(); err != nil {
		t.Fatalf("population: %v\n%s", err, out)
	}
	api := startProc(t, "sentinel-sim api", "", nil, sim, "api", "--listen", "127.0.0.1:0", "--population", pop)
	w.apiAddr = listening.FindStringSubmatch(api.mustLine(t, listening, 15*time.Second).text)[1]
	return w
}

// artifactDir returns a fresh directory for name: under SCALE_ARTIFACTS when set (kept after
// the test, for the agents' logs and databases), else a temporary one.
func artifactDir(t *testing.T, name string) string {
	t.Helper()
	root := os.Getenv("SCALE_ARTIFACTS")
	if root == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := os.MkdirTemp(root, t.Name()+"-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("artifacts: %s", d)
	return d
}

// unit is one agent with its own directory (config, queue, state files), its own pty
// scanner (sentinel-sim scan) and its runs (one process per start).
type unit struct {
	w        *world
	id       string // device.id
	dir      string
	cfgPath  string
	db       string
	scanner  *proc
	runs     []*proc
	clientID string
}

// unitConfig is what differs between the harnesses' agents.
type unitConfig struct {
	brokers []string
	uplink  string // more keys inside the uplink mapping, e.g. ", drain_rate: 50"
	keyFile string // privacy.platform_key_file, "" for masked-only records
}

// newUnit writes the unit's config, checks it with `sentinel check` and starts its scanner
// at rate scans a second (cycling the token list); the agent is started by start.
func (w *world) newUnit(t *testing.T, id string, rate float64, c unitConfig) *unit {
	t.Helper()
	u := &unit{w: w, id: id, dir: filepath.Join(w.dir, id), clientID: "sentinel-" + venue + "-" + id}
	if err := os.MkdirAll(u.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	u.cfgPath, u.db = filepath.Join(u.dir, "sentinel.yaml"), filepath.Join(u.dir, "queue.db")
	port := filepath.Join(u.dir, "ttyQR")
	var b strings.Builder
	fmt.Fprintf(&b, "device: {id: %s, venue: \"%s\", style: reduced_gate}\n", id, venue)
	fmt.Fprintf(&b, "scanners: {qr: {driver: serial, port: %s}}\n", port)
	fmt.Fprintf(&b, "platform: {url: \"http://%s\"}\n", w.apiAddr)
	fmt.Fprintf(&b, "queue: {path: %s}\n", u.db)
	fmt.Fprintf(&b, "uplink: {brokers: [\"%s\"]%s}\n", strings.Join(c.brokers, `", "`), c.uplink)
	b.WriteString("screen: {listen: \"off\"}\nmetrics: {listen: \"off\"}\n")
	if c.keyFile != "" {
		fmt.Fprintf(&b, "privacy: {platform_key_file: %s}\n", c.keyFile)
	}
	if err := os.WriteFile(u.cfgPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(w.bins, "sentinel"), "check", "--config", u.cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("sentinel check %s: %v\n%s", id, err, out)
	}
	u.scanner = startProc(t, id+" scanner", "", nil, filepath.Join(w.bins, "sentinel-sim"), "scan", "--port", port,
		"--tokens", w.tokens, "--rate", fmt.Sprint(rate), "--count", "1000000000", "--eol", "crlf")
	u.scanner.mustLine(t, portReady, 15*time.Second)
	return u
}

// launch starts a run of the agent and returns at once.
func (u *unit) launch(t *testing.T) *proc {
	t.Helper()
	p := startProc(t, u.id, filepath.Join(u.dir, "agent.log"), nil, filepath.Join(u.w.bins, "sentinel"), "run", "--config", u.cfgPath)
	u.runs = append(u.runs, p)
	return p
}

// start starts a run of the agent and waits until its pipeline is up.
func (u *unit) start(t *testing.T) *proc {
	t.Helper()
	p := u.launch(t)
	p.mustLine(t, pipelineUp, 30*time.Second)
	return p
}

// current returns the latest run.
func (u *unit) current() *proc { return u.runs[len(u.runs)-1] }

// logs returns the output of every run, oldest first.
func (u *unit) logs() string {
	var b strings.Builder
	for _, r := range u.runs {
		b.WriteString(r.output())
	}
	return b.String()
}

// openDB opens the unit's outbox read-only through SQLite (a reader in another process:
// it takes WAL read locks and never disturbs the agent).
func openDB(path string) (*sql.DB, error) {
	return sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
}

// pending returns the number of records not yet marked delivered.
func (u *unit) pending() (int, error) {
	db, err := openDB(u.db)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.QueryRow(`SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL`).Scan(&n)
	return n, err
}

// firstDeliveryAfter returns the earliest delivered_at after t (ms), if any.
func (u *unit) firstDeliveryAfter(t time.Time) (time.Time, bool, error) {
	db, err := openDB(u.db)
	if err != nil {
		return time.Time{}, false, err
	}
	defer db.Close()
	var ms sql.NullInt64
	if err := db.QueryRow(`SELECT MIN(delivered_at) FROM outbox WHERE delivered_at > ?`, t.UnixMilli()).Scan(&ms); err != nil {
		return time.Time{}, false, err
	}
	return time.UnixMilli(ms.Int64), ms.Valid, nil
}

// waitDrained waits until nothing is pending.
func (u *unit) waitDrained(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n, err := u.pending()
		if err == nil && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d records still pending after %v (err %v):\n%s", u.id, n, within, err, tail(u.current().output(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stored returns every retained record of the outbox, decoded, and the integrity check's
// result (nil: ok).
func (u *unit) stored(t *testing.T) ([]queue.Entry, error) {
	t.Helper()
	r, err := queue.OpenReader(u.db)
	if err != nil {
		t.Fatalf("%s: open the outbox read-only: %v", u.id, err)
	}
	defer r.Close()
	var es []queue.Entry
	if err := r.Entries(context.Background(), func(e queue.Entry) error { es = append(es, e); return nil }); err != nil {
		t.Fatalf("%s: read the outbox: %v", u.id, err)
	}
	return es, r.IntegrityCheck(context.Background())
}
