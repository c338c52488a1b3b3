package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sentinel-edge/sentinel/agent"
	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/statefile"
)

func init() {
	register("reload", "make the running daemon re-read its config (as systemctl reload does)", cmdReload)
}

// pidFileName is the running daemon's pid file, beside the queue.
const pidFileName = "sentinel.pid"

// Seams for tests: where /proc is, and how a signal is sent.
var (
	procDir    = "/proc"
	sendSignal = func(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }
)

// reloadWait bounds how long sentinel reload waits for the daemon's outcome.
var reloadWait = 10 * time.Second

func pidPath(cfg *config.Config) string { return statefile.Path(cfg.Queue.Path, pidFileName) }

// pidFile is the daemon's pid file: written atomically once the pipeline is up, removed at
// stop. It holds the process's start time as the kernel counts it, so that a stale file
// (the daemon died, its pid reused) is not trusted.
type pidFile struct {
	path, config string
	written      *pidRecord
}

type pidRecord struct {
	PID    int    `json:"pid"`
	Start  string `json:"start"` // field 22 of /proc/<pid>/stat
	Config string `json:"config"`
	Since  string `json:"since"`
}

func (p *pidFile) write() error {
	rec := pidRecord{PID: os.Getpid(), Config: p.config, Since: time.Now().UTC().Format(time.RFC3339)}
	rec.Start, _ = procStart(rec.PID)
	if abs, err := filepath.Abs(p.config); err == nil {
		rec.Config = abs
	}
	b, _ := json.Marshal(rec)
	if err := statefile.Write(p.path, append(b, '\n')); err != nil {
		return err
	}
	p.written = &rec
	return nil
}

// remove deletes the pid file if it is still this process's.
func (p *pidFile) remove() {
	if p.written == nil {
		return
	}
	if rec, err := readPid(p.path); err == nil && rec.PID == p.written.PID && rec.Start == p.written.Start {
		_ = os.Remove(p.path)
	}
}

func readPid(path string) (pidRecord, error) {
	var rec pidRecord
	b, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil || rec.PID <= 0 {
		return rec, fmt.Errorf("%s is not a sentinel pid file", path)
	}
	return rec, nil
}

// procStart is the start time of process pid (clock ticks since boot), from /proc.
func procStart(pid int) (string, error) {
	b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", err
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses; the fields after
	// the last ')' start at field 3.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", errors.New("unreadable " + filepath.Join(procDir, strconv.Itoa(pid), "stat"))
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", errors.New("short " + filepath.Join(procDir, strconv.Itoa(pid), "stat"))
	}
	return f[19], nil // field 22
}

// daemon is what the pid file says of the running daemon.
type daemon struct {
	running bool
	pid     int
	config  string
	since   string
	why     string // when not running: why it is taken not to run
}

// findDaemon reads the pid file of cfg's unit and checks it against /proc: the process must
// exist and have started when the file says.
func findDaemon(cfg *config.Config) daemon {
	path := pidPath(cfg)
	rec, err := readPid(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return daemon{why: "no pid file at " + path + " (the daemon writes it once its pipeline is up, and removes it when it stops)"}
	case err != nil:
		return daemon{why: err.Error()}
	}
	start, err := procStart(rec.PID)
	if err != nil || (rec.Start != "" && start != rec.Start) {
		return daemon{pid: rec.PID, why: fmt.Sprintf("the pid file %s names pid %d, which is not that daemon any more (it ended without removing the file)", path, rec.PID)}
	}
	return daemon{running: true, pid: rec.PID, config: rec.Config, since: rec.Since}
}

func cmdReload(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("reload", "reload --config FILE", stdout, stderr)
	path := fs.String("config", "", "config `FILE` the daemon runs with")
	wait := fs.Duration("wait", reloadWait, "longest time to wait for the daemon's outcome")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sentinel reload --config FILE\n\n"+
			"Checks FILE, then sends SIGHUP to the daemon running for it (found by the pid file beside\n"+
			"queue.path) and prints what it did: the keys now in force, and those that need a restart.\n"+
			"An invalid FILE is not sent: the daemon keeps running on its config. Run it as root or\n"+
			"as the daemon's user. systemctl reload sentinel sends the same signal.\n\n"+
			"Exit codes: 0 reloaded; 1 no daemon running, or it refused the file; 2 usage or invalid FILE.\n\n")
		fs.PrintDefaults()
	}
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	if *wait <= 0 {
		fmt.Fprintf(stderr, "sentinel reload: --wait must be > 0, got %s; the daemon was not signalled\n", *wait)
		return exitUsage
	}
	cfg, code := loadConfig(fs, *path, stderr)
	if cfg == nil {
		fmt.Fprintln(stderr, "sentinel reload: the daemon was not signalled; it keeps running on the config it has")
		return code
	}
	d := findDaemon(cfg)
	if !d.running {
		fmt.Fprintf(stderr, "sentinel reload: the daemon is not running for %s: %s\n", *path, d.why)
		return exitFailure
	}
	if abs, err := filepath.Abs(*path); err == nil && d.config != "" && abs != d.config {
		fmt.Fprintf(stderr, "sentinel reload: note: the daemon (pid %d) runs with --config %s; it re-reads that file, not %s\n", d.pid, d.config, abs)
	}
	outPath := statefile.Path(cfg.Queue.Path, agent.ReloadFile)
	before, _ := os.ReadFile(outPath)
	if err := sendSignal(d.pid, syscall.SIGHUP); err != nil {
		fmt.Fprintf(stderr, "sentinel reload: signal pid %d: %v (run as root or as the daemon's user)\n", d.pid, err)
		return exitFailure
	}
	deadline := time.Now().Add(*wait)
	for {
		b, err := os.ReadFile(outPath)
		var out agent.ReloadOutcome
		if err == nil && string(b) != string(before) && json.Unmarshal(b, &out) == nil {
			return printReload(stdout, stderr, d.pid, out)
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(stderr, "sentinel reload: signalled pid %d, but it wrote no outcome within %s; see its log (journalctl -u sentinel)\n", d.pid, *wait)
			return exitFailure
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func printReload(stdout, stderr io.Writer, pid int, out agent.ReloadOutcome) int {
	if !out.OK {
		fmt.Fprintf(stderr, "sentinel reload: the daemon (pid %d) refused the file and keeps running on the config it has:\n", pid)
		for _, p := range out.Problems {
			fmt.Fprintf(stderr, "  %s\n", p)
		}
		return exitFailure
	}
	fmt.Fprintf(stdout, "reloaded (pid %d, %s)\n", pid, out.At)
	switch {
	case len(out.Applied) == 0 && len(out.Restart) == 0:
		fmt.Fprintln(stdout, "  nothing changed")
	case len(out.Applied) == 0:
		fmt.Fprintln(stdout, "  nothing new in force")
	}
	for _, k := range out.Applied {
		fmt.Fprintf(stdout, "  in force now:   %s\n", k)
	}
	for _, k := range out.Restart {
		fmt.Fprintf(stdout, "  needs restart:  %s (systemctl restart sentinel)\n", k)
	}
	if len(out.Restart) > 0 {
		fmt.Fprintln(stdout, "  (a restart-only key is compared with the config the daemon started with: it stays listed until a restart)")
	}
	return exitOK
}
