//go:build linux

package scanner

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"
)

// readExactly reads want's length from port within a deadline.
func readExactly(t *testing.T, port serial.Port, want []byte) {
	t.Helper()
	got := make([]byte, 0, len(want))
	buf := make([]byte, 64)
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		n, err := port.Read(buf)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want) {
		// Positions only: the bytes are tokens.
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("read %d bytes, want %d; first difference at byte %d", len(got), len(want), i)
	}
}

func openSerial(t *testing.T, path string) serial.Port {
	t.Helper()
	sp, err := serial.Open(path, &serial.Mode{BaudRate: 9600})
	if err != nil {
		t.Fatalf("serial.Open: %v", err)
	}
	if err := sp.SetReadTimeout(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestPTYEndToEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ttyQR")
	port, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if target, err := os.Readlink(path); err != nil || target != port.Device() || !strings.HasPrefix(target, "/dev/pts/") {
		t.Fatalf("symlink -> %q (%v), want %q", target, err, port.Device())
	}
	if port.String() != path+" -> "+port.Device() {
		t.Errorf("String() = %q", port.String())
	}

	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fed := make(chan error, 1)
	go func() {
		_, err := Feed(ctx, port, NewLineSource(pr), Options{EOL: EOLCRLF})
		fed <- err
	}()

	sp := openSerial(t, path)
	// Bytes a cooked line discipline would translate or eat: CR, NL, ^C, ^D, DEL.
	if _, err := io.WriteString(pw, "HC-TEST-0001\n\x03\x04\x7f\n"); err != nil {
		t.Fatal(err)
	}
	readExactly(t, sp, []byte("HC-TEST-0001\r\n\x03\x04\x7f\r\n"))

	// The reader writing to the scanner must not block anything.
	if _, err := sp.Write([]byte("TRIGGER\r")); err != nil {
		t.Fatal(err)
	}

	// Close and reopen: the pty must survive and keep raw mode.
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	sp = openSerial(t, path)
	defer sp.Close()
	if _, err := io.WriteString(pw, "HC-TEST-0002\n"); err != nil {
		t.Fatal(err)
	}
	readExactly(t, sp, []byte("HC-TEST-0002\r\n"))

	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	defer dcancel()
	if err := port.Drain(dctx); err != nil {
		t.Errorf("Drain after the reader read everything: %v", err)
	}

	pw.Close()
	if err := <-fed; err != nil {
		t.Errorf("Feed: %v", err)
	}
	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("symlink still there after Close: %v", err)
	}
}

func TestDrainTimesOutWithoutReader(t *testing.T) {
	port, err := Open(filepath.Join(t.TempDir(), "ttyQR"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if _, err := port.Write([]byte("X\r")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := port.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain = %v, want DeadlineExceeded", err)
	}
}

func TestCloseUnblocksWrite(t *testing.T) {
	port, err := Open(filepath.Join(t.TempDir(), "ttyQR"), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		// Nobody reads: the pty buffer fills and Write blocks.
		_, err := port.Write(make([]byte, 1<<20))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a 1 MiB write to an unread pty returned early: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Write after Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Write")
	}
}

func TestOpenPathRules(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		setup   func(path string) error
		wantErr error
	}{
		{name: "fresh path"},
		{name: "stale dangling symlink", setup: func(p string) error { return os.Symlink("/dev/pts/99999", p) }},
		{name: "symlink to a regular file", setup: func(p string) error {
			if err := os.WriteFile(p+".target", nil, 0o600); err != nil {
				return err
			}
			return os.Symlink(p+".target", p)
		}},
		{name: "regular file refused", setup: func(p string) error { return os.WriteFile(p, []byte("keep me"), 0o600) }, wantErr: ErrExists},
		{name: "directory refused", setup: func(p string) error { return os.Mkdir(p, 0o700) }, wantErr: ErrExists},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "tty"+string(rune('a'+i)))
			if tt.setup != nil {
				if err := tt.setup(path); err != nil {
					t.Fatal(err)
				}
			}
			port, err := Open(path, nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if _, serr := os.Lstat(path); serr != nil {
					t.Errorf("refused path was touched: %v", serr)
				}
				return
			}
			defer port.Close()
			if target, err := os.Readlink(path); err != nil || target != port.Device() {
				t.Errorf("link -> %q (%v), want %q", target, err, port.Device())
			}
		})
	}
}

func TestOpenCharDevice(t *testing.T) {
	// A pty slave made by another simulator (or socat) is written to as a
	// device; /dev/null serves as a device nobody reads back.
	port, err := Open("/dev/null", nil)
	if err != nil {
		t.Skipf("cannot open /dev/null as a device here: %v", err)
	}
	defer port.Close()
	if port.String() != "/dev/null" || port.Device() != "/dev/null" {
		t.Errorf("String %q Device %q", port.String(), port.Device())
	}
}
