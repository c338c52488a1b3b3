package scale

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/mqtttest"
	"github.com/sentinel-edge/sentinel/internal/privacy"
)

var (
	drainingLine  = regexp.MustCompile(`uplink: draining the backlog`)
	connectedLine = regexp.MustCompile(`msg="uplink: connected"`)
)

// killMode is when a soak cycle kills the agent.
type killMode int

const (
	killRandom  killMode = iota // at a random moment 50 ms–1.5 s after the pipeline is up
	killCommit                  // while a thread is in pwrite64/fsync/fdatasync: a commit
	killDrain                   // while the uplink drains a backlog
	killStartup                 // within 0–100 ms of the process starting: during recovery
)

func (m killMode) String() string {
	return [...]string{"random", "commit", "drain", "startup"}[m]
}

// soakStats counts what the soak did.
type soakStats struct {
	kills          [4]int
	commitCaught   int // commit kills that found a thread in a write or sync syscall
	drainCaught    int // drain kills that found the uplink draining
	brokerRestarts int
	readerRuns     int // outside readers (queue stats, sqlite3) that ran alongside
}

// TestSoak is make soak: the built agent under a steady scan load (20 scans/s from
// sentinel-sim scan, sealed records), killed with SIGKILL and restarted SOAK_CYCLES times
// (default 200), with the broker restarted every 20th cycle. Then: every record the agent
// logged as stored (and every record in its outbox) reached the subscriber; per stream the
// seqs are 1..N without a gap and no seq carries two ids; first arrivals are in the
// documented order; PRAGMA integrity_check is ok; no ID number is in plain text anywhere.
func TestSoak(t *testing.T) {
	requireScale(t)
	cycles := envInt(t, "SOAK_CYCLES", 200)
	const rate, brokerEvery = 20.0, 20
	began := time.Now()

	broker := mqtttest.StartWith(t, mqtttest.Options{Persistence: true})
	w := newWorld(t)
	pub, _, err := privacy.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(w.dir, "platform.pub")
	if err := os.WriteFile(keyFile, []byte(privacy.EncodeKey(*pub)), 0o644); err != nil {
		t.Fatal(err)
	}
	const device = "soak-01"
	sub := subscribe(t, []string{broker.URL()}, "platform-soak", "sentinel/v1/"+venue+"/"+device+"/+")
	// A drain limit, so a backlog takes a while to drain and a kill can land in it.
	u := w.newUnit(t, device, rate, unitConfig{brokers: []string{broker.URL()}, keyFile: keyFile,
		uplink: ", backoff_base: 20ms, backoff_cap: 500ms, drain_rate: 40"})

	// Outside readers while the daemon runs, as docs/queue.md allows: an operator's (or a
	// monitor's) `sentinel queue stats`, and the sqlite3 shell it suggests for the quarantine,
	// each every 500 ms: other processes opening and closing the database
	// (SOAK_OUTSIDE_READERS=0 leaves them out).
	stopReader := make(chan struct{})
	readerDone := make(chan int)
	readers := os.Getenv("SOAK_OUTSIDE_READERS") != "0"
	if _, err := exec.LookPath("sqlite3"); readers && err != nil {
		t.Fatalf("the soak's outside reader needs the sqlite3 shell (apt-get install sqlite3), or SOAK_OUTSIDE_READERS=0: %v", err)
	}
	go func() {
		n := 0
		for i := 0; readers; i++ {
			select {
			case <-stopReader:
				readerDone <- n
				return
			case <-time.After(250 * time.Millisecond):
			}
			cmd := exec.Command(filepath.Join(w.bins, "sentinel"), "queue", "stats", "--config", u.cfgPath)
			if i%2 == 1 {
				cmd = exec.Command("sqlite3", u.db, "SELECT COUNT(*) FROM outbox; SELECT COUNT(*) FROM quarantine;")
			}
			if cmd.Run() == nil {
				n++
			}
		}
		<-stopReader
		readerDone <- 0
	}()
	var st soakStats
	for i := 1; i <= cycles; i++ {
		mode := killMode(rand.IntN(4))
		restartBroker := i%brokerEvery == 0
		if restartBroker {
			mode = killDrain
		}
		soakCycle(t, u, broker, mode, restartBroker, &st)
		if i%20 == 0 {
			t.Logf("cycle %d/%d: kills %v (commit caught %d, drain caught %d), broker restarts %d",
				i, cycles, st.kills, st.commitCaught, st.drainCaught, st.brokerRestarts)
		}
	}

	close(stopReader)
	st.readerRuns = <-readerDone
	// A last start delivers what the killed runs committed; then the scans stop.
	last := u.start(t)
	u.scanner.interrupt(5 * time.Second)
	u.waitDrained(t, 2*time.Minute)
	if !last.interrupt(20 * time.Second) {
		t.Errorf("the agent did not stop within 20s of SIGINT")
	}
	soakVerify(t, u, broker, sub, cycles, st, time.Since(began))
}

// soakCycle runs the agent once and kills it as mode says; with restartBroker the broker is
// stopped for 2 s while the agent runs (a backlog builds up) and the kill lands in the drain
// that follows.
func soakCycle(t *testing.T, u *unit, broker *mqtttest.Broker, mode killMode, restartBroker bool, st *soakStats) {
	t.Helper()
	if mode == killStartup {
		p := u.launch(t)
		time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
		p.kill()
		st.kills[mode]++
		return
	}
	p := u.start(t)
	switch {
	case restartBroker:
		_, _, _ = p.waitLine(connectedLine, 0, 10*time.Second)
		broker.Stop()
		time.Sleep(2 * time.Second) // the scans go on; the backlog grows
		broker.Start()
		st.brokerRestarts++
		if _, _, ok := p.waitLine(drainingLine, 0, 15*time.Second); ok {
			st.drainCaught++
		}
		time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
	case mode == killDrain:
		if _, _, ok := p.waitLine(drainingLine, 0, 3*time.Second); ok {
			st.drainCaught++
			time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
		}
	case mode == killCommit:
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if in, _ := inWriteSyscall(p.pid()); in {
				st.commitCaught++
				break
			}
		}
	default:
		time.Sleep(time.Duration(50+rand.IntN(1450)) * time.Millisecond)
	}
	p.kill()
	st.kills[mode]++
}

// soakVerify checks every property and prints the summary.
func soakVerify(t *testing.T, u *unit, broker *mqtttest.Broker, sub *capture, cycles int, st soakStats, took time.Duration) {
	c := &checks{t: t}
	r := verifyUnit(t, c, u, sub, time.Minute)
	named := files(u.db, u.db+"-wal", filepath.Join(u.dir, "agent.log"))
	named["broker log"] = []byte(broker.Output())
	for i, m := range r.msgs {
		named[fmt.Sprintf("message %d", i)] = m.payload
	}
	for _, e := range r.stored {
		named[fmt.Sprintf("stored %s seq %d", e.Stream, e.Seq)] = e.Payload
	}
	leaks := plaintextIDs(named)
	c.check("no ID number in plain text", len(leaks) == 0, "%s", firstFew(leaks, 5))

	c.done(fmt.Sprintf("soak: cycles=%d kills=%d (random=%d commit=%d [in a write/sync syscall: %d] drain=%d [draining: %d] startup=%d) "+
		"broker_restarts=%d outside_reader_runs=%d connections=%d %s plaintext_ids=%d took=%s",
		cycles, cycles, st.kills[killRandom], st.kills[killCommit], st.commitCaught, st.kills[killDrain], st.drainCaught, st.kills[killStartup],
		st.brokerRestarts, st.readerRuns, r.connections, r.totals(), len(leaks), took.Round(time.Second)))
}
