package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.bug.st/serial"

	"github.com/sentinel-edge/sentinel/sim/population"
)

// lineBuffer is a concurrency-safe writer that tests can wait on.
type lineBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLineBuffer() *lineBuffer { return &lineBuffer{changed: make(chan struct{}, 1)} }

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case b.changed <- struct{}{}:
	default:
	}
	return n, err
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitLine returns the rest of the first complete line starting with prefix.
func (b *lineBuffer) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		for _, line := range strings.SplitAfter(b.String(), "\n") {
			if strings.HasPrefix(line, prefix) && strings.HasSuffix(line, "\n") {
				return strings.TrimSuffix(strings.TrimPrefix(line, prefix), "\n")
			}
		}
		select {
		case <-b.changed:
		case <-deadline:
			t.Fatalf("no line starting with %q; stderr has %d bytes", prefix, len(b.String()))
		}
	}
}

// start runs a command line in the background; the returned function
// cancels it and returns its exit status.
func start(t *testing.T, args []string, stdin io.Reader) (stderr *lineBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr = newLineBuffer()
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, env{stdin: stdin, stdout: io.Discard, stderr: stderr}) }()
	var once sync.Once
	var code int
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("command did not stop after cancel")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return stderr, stop
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
		wantStdout string
	}{
		{name: "no command", args: nil, wantCode: 2, wantStderr: "Usage: sentinel-sim"},
		{name: "unknown command", args: []string{"bogus"}, wantCode: 2, wantStderr: `unknown command "bogus"`},
		{name: "help", args: []string{"help"}, wantCode: 0, wantStdout: "Commands:"},
		{name: "api help", args: []string{"api", "--help"}, wantCode: 0, wantStdout: "Usage: sentinel-sim api"},
		{name: "scan help", args: []string{"scan", "-h"}, wantCode: 0, wantStdout: "-exit-after-write"},
		{name: "broker help", args: []string{"broker", "--help"}, wantCode: 0, wantStdout: "-allow-remote"},
		{name: "population help", args: []string{"population", "--help"}, wantCode: 0, wantStdout: "-tokens-out"},
		{name: "unknown flag", args: []string{"api", "--bogus"}, wantCode: 2, wantStderr: "-bogus"},
		{name: "bad flag value", args: []string{"scan", "--rate", "fast"}, wantCode: 2, wantStderr: "-rate"},
		{name: "extra argument", args: []string{"api", "--population", "p.csv", "extra"}, wantCode: 2, wantStderr: `unexpected argument "extra"`},
		{name: "api without population", args: []string{"api"}, wantCode: 2, wantStderr: "--population is required"},
		{name: "api remote refused", args: []string{"api", "--population", "p.csv", "--listen", "0.0.0.0:8080"}, wantCode: 2, wantStderr: "--listen"},
		{name: "api empty host refused", args: []string{"api", "--population", "p.csv", "--listen", ":8080"}, wantCode: 2, wantStderr: "--allow-remote"},
		{name: "api negative delay", args: []string{"api", "--population", "p.csv", "--delay", "-1s"}, wantCode: 2, wantStderr: "--delay"},
		{name: "api bad log level", args: []string{"api", "--population", "p.csv", "--log-level", "loud"}, wantCode: 2, wantStderr: "--log-level"},
		{name: "api missing file", args: []string{"api", "--population", filepath.Join(dir, "missing.csv"), "--listen", "127.0.0.1:0"}, wantCode: 1, wantStderr: "missing.csv"},
		{name: "scan without tokens", args: []string{"scan", "--port", filepath.Join(dir, "tty")}, wantCode: 2, wantStderr: "--tokens is required"},
		{name: "scan without port", args: []string{"scan", "--tokens", "-"}, wantCode: 2, wantStderr: "--port is required"},
		{name: "scan bad eol", args: []string{"scan", "--port", "p", "--tokens", "-", "--eol", "nl"}, wantCode: 2, wantStderr: "--eol"},
		{name: "scan negative rate", args: []string{"scan", "--port", "p", "--tokens", "-", "--rate", "-1"}, wantCode: 2, wantStderr: "--rate"},
		{name: "scan negative count", args: []string{"scan", "--port", "p", "--tokens", "-", "--count", "-1"}, wantCode: 2, wantStderr: "--count"},
		{name: "scan missing token file", args: []string{"scan", "--port", filepath.Join(dir, "tty"), "--tokens", filepath.Join(dir, "none.txt")}, wantCode: 1, wantStderr: "none.txt"},
		{name: "broker remote refused", args: []string{"broker", "--listen", "192.0.2.1:1883"}, wantCode: 2, wantStderr: "--listen"},
		{name: "population without out", args: []string{"population"}, wantCode: 2, wantStderr: "--out is required"},
		{name: "population bad now", args: []string{"population", "--out", "x.csv", "--now", "yesterday"}, wantCode: 2, wantStderr: "--now"},
		// Issue #14, finding 8: sentinel-sim had no version.
		{name: "version", args: []string{"version"}, wantCode: 0, wantStdout: "sentinel-sim "},
		{name: "version json", args: []string{"version", "--json"}, wantCode: 0, wantStdout: `"go_version"`},
		{name: "--version", args: []string{"--version"}, wantCode: 0, wantStdout: "sentinel-sim "},
		{name: "-v", args: []string{"-v"}, wantCode: 0, wantStdout: "sentinel-sim "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr lacks %q: %s", tt.wantStderr, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout lacks %q: %s", tt.wantStdout, stdout.String())
			}
		})
	}
	if _, err := os.Lstat(filepath.Join(dir, "tty")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a failed scan left its port path behind")
	}
}

func TestPopulationThenAPI(t *testing.T) {
	dir := t.TempDir()
	popFile, tokFile := filepath.Join(dir, "pop.csv"), filepath.Join(dir, "tokens.txt")
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"population", "--out", popFile, "--tokens-out", tokFile, "--now", "2026-11-25T08:00:00Z"},
		env{stdout: io.Discard, stderr: &stderr})
	if code != 0 {
		t.Fatalf("population exit %d: %s", code, stderr.String())
	}
	pop, err := population.Load(popFile)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := os.ReadFile(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(tokens), "\n"); got != pop.Len()+1 {
		t.Errorf("token list has %d lines, want %d", got, pop.Len()+1)
	}

	errs, stop := start(t, []string{"api", "--listen", "127.0.0.1:0", "--population", popFile}, nil)
	addr := errs.waitLine(t, "listening on ")
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("listening on %q, want the real port", addr)
	}
	for _, tc := range []struct {
		token string
		want  int
	}{{population.TokenGreenFresh, 200}, {population.TokenUnknown, 404}} {
		resp, err := http.Post("http://"+addr+"/api/v1/verify/qr", "application/json",
			strings.NewReader(`{"qr_token":"`+tc.token+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("token %s: status %d, want %d", population.Mask(tc.token), resp.StatusCode, tc.want)
		}
	}
	if code := stop(); code != 0 {
		t.Errorf("api exit %d after cancel, want 0", code)
	}
	if strings.Contains(errs.String(), population.TokenGreenFresh) {
		t.Error("api log contains an unmasked token")
	}
}

func needPTY(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the scan simulator needs Linux ptys")
	}
}

func TestScanCommand(t *testing.T) {
	needPTY(t)
	path := filepath.Join(t.TempDir(), "ttyQR")
	pr, pw := io.Pipe()
	defer pw.Close()
	errs, stop := start(t, []string{"scan", "--port", path, "--tokens", "-", "--rate", "0", "--eol", "crlf"}, pr)
	ready := errs.waitLine(t, "port ready: ")
	if !strings.HasPrefix(ready, path+" -> /dev/pts/") {
		t.Fatalf("port ready line %q", ready)
	}

	sp, err := serial.Open(path, &serial.Mode{BaudRate: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if err := sp.SetReadTimeout(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(pw, "HC-CMD-0001\n\nHC-CMD-0002\n"); err != nil {
		t.Fatal(err)
	}
	pw.Close() // stdin EOF: the port must stay open
	want := []byte("HC-CMD-0001\r\nHC-CMD-0002\r\n")
	var got []byte
	buf := make([]byte, 64)
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		n, err := sp.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d (contents differ)", len(got), len(want))
	}
	errs.waitLine(t, "time=") // the log works
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("port path gone before the signal: %v", err)
	}
	if code := stop(); code != 0 {
		t.Errorf("scan exit %d after cancel, want 0", code)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("symlink not removed on exit: %v", err)
	}
	if strings.Contains(errs.String(), "HC-CMD-0001") {
		t.Error("scan log contains an unmasked token")
	}
}

func TestScanExitAfterWrite(t *testing.T) {
	needPTY(t)
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "tokens.txt")
	if err := os.WriteFile(tokFile, []byte("HC-A1\nHC-B2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"scan", "--port", filepath.Join(dir, "tty"), "--tokens", tokFile,
		"--rate", "0", "--exit-after-write", "--drain", "50ms"}, env{stdout: io.Discard, stderr: &stderr})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "scans=2") {
		t.Errorf("stderr does not report 2 scans: %s", stderr.String())
	}
}

func TestBrokerCommand(t *testing.T) {
	errs, stop := start(t, []string{"broker", "--listen", "127.0.0.1:0"}, nil)
	addr := errs.waitLine(t, "broker listening on ")
	// A full MQTT session, so that the broker has finished accepting before it is stopped:
	// mochi's Close races with a connection still being accepted.
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("sim-test").SetAutoReconnect(false))
	if tok := cl.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to the broker: %v", tok.Error())
	}
	cl.Disconnect(100)
	if code := stop(); code != 0 {
		t.Errorf("broker exit %d after cancel, want 0", code)
	}
}
