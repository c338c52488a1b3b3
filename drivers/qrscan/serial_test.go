package qrscan

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/sim/scanner"
)

// TestSerialOverPTY reads scans through go.bug.st/serial from the simulator's pseudo-terminal,
// as the daemon does from a real scanner.
func TestSerialOverPTY(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pty simulator is Linux-only")
	}
	path := filepath.Join(t.TempDir(), "ttyQR")
	sim, err := scanner.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	s := NewSerial(SerialConfig{Port: path, Baud: 9600, MaxLength: 32}, nil)
	if err := s.Open(); err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 10)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(sc Scan) { got <- sc.Token }) }()
	waitOnline(t, s)

	if _, err := sim.Write([]byte("HC-ONE\r\nHC-\x00BAD\r" + "HC-TWO\n" + "X23456789012345678901234567890123\rHC-THREE\r")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"HC-ONE", "HC-TWO", "HC-THREE"} {
		select {
		case tok := <-got:
			if tok != want {
				t.Fatalf("scan %q, want %q", tok, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no scan %q within 5s", want)
		}
	}
	st := s.Stats()
	if st.Garbage != 1 || st.Overlong != 1 || st.Scans != 3 {
		t.Errorf("stats %+v, want 3 scans, 1 garbage, 1 overlong", st)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v on cancel", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestOpenMissingPort(t *testing.T) {
	s := NewSerial(SerialConfig{Port: filepath.Join(t.TempDir(), "none"), Baud: 9600, MaxLength: 32}, nil)
	if err := s.Open(); err == nil {
		t.Fatal("Open of a missing port succeeded")
	}
}

func waitOnline(t *testing.T, s *Serial) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !s.Stats().Online {
		if time.Now().After(deadline) {
			t.Fatal("scanner not online within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
