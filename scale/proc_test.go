package scale

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// requireScale skips the test unless SENTINEL_SCALE=1 (the make targets set it).
func requireScale(t *testing.T) {
	t.Helper()
	if os.Getenv("SENTINEL_SCALE") != "1" {
		t.Skip("a scale harness: run it with make soak, make test-cluster or make test-fleet (SENTINEL_SCALE=1)")
	}
}

// envInt returns the integer in the environment variable name, or def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// binDir is SENTINEL_BIN_DIR, which must hold the built sentinel and sentinel-sim.
func binDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("SENTINEL_BIN_DIR")
	if d == "" {
		t.Fatal("SENTINEL_BIN_DIR is not set: run the make target, which builds bin/ first")
	}
	for _, b := range []string{"sentinel", "sentinel-sim"} {
		if _, err := os.Stat(filepath.Join(d, b)); err != nil {
			t.Fatalf("SENTINEL_BIN_DIR=%s lacks %s: run make build", d, b)
		}
	}
	return d
}

// line is one line a process wrote, with the time it was read.
type line struct {
	at   time.Time
	text string
}

// proc is a child process whose output (stdout and stderr) is kept line by line.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu      sync.Mutex
	lines   []line
	changed chan struct{} // closed and replaced on every new line
}

// startProc starts bin with args; its output is kept (and copied to logFile if set). The
// process dies with the test binary (Pdeathsig), and t.Cleanup kills it if it still runs.
func startProc(t testing.TB, name, logFile string, stdin io.Reader, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{}), changed: make(chan struct{})}
	p.cmd.Stdin = stdin
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	p.cmd.WaitDelay = 5 * time.Second
	var copyTo io.WriteCloser
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		copyTo = f
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l := line{at: time.Now(), text: sc.Text()}
			if copyTo != nil {
				fmt.Fprintln(copyTo, l.text)
			}
			p.mu.Lock()
			p.lines = append(p.lines, l)
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		_ = p.cmd.Wait()
		pw.Close()
		<-read
		if copyTo != nil {
			copyTo.Close()
		}
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended (and its output was read).
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the end.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// interrupt sends SIGINT and waits up to within, then kills; it reports whether the process
// ended by itself.
func (p *proc) interrupt(within time.Duration) bool {
	if p.exited() {
		return true
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		return true
	case <-time.After(within):
		p.kill()
		return false
	}
}

// snapshot returns the lines so far.
func (p *proc) snapshot() []line {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]line(nil), p.lines...)
}

// output returns everything the process wrote so far.
func (p *proc) output() string {
	var b strings.Builder
	for _, l := range p.snapshot() {
		b.WriteString(l.text)
		b.WriteByte('\n')
	}
	return b.String()
}

// waitLine waits up to within for a line at index from or later that matches re; it returns
// its index and the line, or ok false (on timeout, or when the process ended first).
func (p *proc) waitLine(re *regexp.Regexp, from int, within time.Duration) (int, line, bool) {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		for i := from; i < len(p.lines); i++ {
			if re.MatchString(p.lines[i].text) {
				l := p.lines[i]
				p.mu.Unlock()
				return i, l, true
			}
		}
		from = max(from, len(p.lines))
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-p.done:
			p.mu.Lock()
			n := len(p.lines)
			p.mu.Unlock()
			if n <= from {
				return -1, line{}, false
			}
		case <-deadline.C:
			return -1, line{}, false
		}
	}
}

// mustLine is waitLine that fails the test, showing the process's output.
func (p *proc) mustLine(t testing.TB, re *regexp.Regexp, within time.Duration) line {
	t.Helper()
	_, l, ok := p.waitLine(re, 0, within)
	if !ok {
		t.Fatalf("no %q from %s within %v:\n%s", re, p.name, within, tail(p.output(), 40))
	}
	return l
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// usage is a process's resident memory and the CPU time it used.
type usage struct {
	rssKB int64
	cpu   time.Duration
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat (100 on Linux).
const clockTick = 10 * time.Millisecond

// procUsage reads VmRSS from /proc/PID/status and utime+stime from /proc/PID/stat.
func procUsage(pid int) (usage, error) {
	var u usage
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, l := range strings.Split(string(st), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			u.rssKB, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // after comm; f[0] is the state (field 3)
	if len(f) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	u.cpu = time.Duration(ut+stt) * clockTick
	return u, nil
}

// writeSyscalls are the syscalls of a SQLite commit (write the WAL, then sync it) by
// architecture: pwrite64, fsync, fdatasync. (Not write: the agent's log lines use it.)
var writeSyscalls = map[string][]string{
	"amd64": {"18", "74", "75"},
	"arm64": {"68", "82", "83"},
}

// inWriteSyscall reports whether a thread of pid is in a write or a sync syscall right now
// (from /proc/PID/task/*/syscall); ok is false where the architecture is not known.
func inWriteSyscall(pid int) (in, ok bool) {
	nums, ok := writeSyscalls[runtime.GOARCH]
	if !ok {
		return false, false
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false, true
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/syscall", pid, task.Name()))
		if err != nil {
			continue
		}
		n, _, _ := strings.Cut(string(b), " ")
		for _, w := range nums {
			if n == w {
				return true, true
			}
		}
	}
	return false, true
}
