package qrscan

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/sim/scanner"
)

// TestSerialHotPlug deletes the scanner's pty and re-creates it: the driver goes offline,
// comes back, and reads again within 2 s of the port's return.
func TestSerialHotPlug(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pty simulator is Linux-only")
	}
	oldMin := backoffMin
	backoffMin = 20 * time.Millisecond
	t.Cleanup(func() { backoffMin = oldMin })
	path := filepath.Join(t.TempDir(), "ttyQR")
	sim, err := scanner.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := NewSerial(SerialConfig{Port: path, Baud: 9600, MaxLength: 64, DuplicateWindow: time.Minute}, nil)
	states := make(chan bool, 16)
	s.OnState(func(on bool, _ error) { states <- on })
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 8)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx, func(sc Scan) { got <- sc.Token }) }()
	defer func() { cancel(); <-done }()
	wantState := func(on bool) {
		t.Helper()
		select {
		case st := <-states:
			if st != on {
				t.Fatalf("state online=%v, want %v", st, on)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no state online=%v within 5s", on)
		}
	}
	wantScan := func(tok string, within time.Duration) {
		t.Helper()
		select {
		case g := <-got:
			if g != tok {
				t.Fatalf("scan %q, want %q", g, tok)
			}
		case <-time.After(within):
			t.Fatalf("no scan %q within %s", tok, within)
		}
	}
	wantState(true)
	if _, err := sim.Write([]byte("HC-A\rHC-A\r")); err != nil {
		t.Fatal(err)
	}
	wantScan("HC-A", 5*time.Second)

	sim.Close() // unplugged: the pty and its link are gone
	wantState(false)
	time.Sleep(1200 * time.Millisecond) // away long enough for the backoff to reach its cap
	sim, err = scanner.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	back := time.Now()
	if _, err := sim.Write([]byte("HC-B\r")); err != nil {
		t.Fatal(err)
	}
	wantState(true)
	wantScan("HC-B", 3*time.Second)
	if d := time.Since(back); d > 2*time.Second {
		t.Errorf("reading again %s after the port returned, want within 2s", d)
	}
	if st := s.Stats(); st.Duplicates != 1 || st.Reopens == 0 {
		t.Errorf("stats %+v, want 1 duplicate and a reopen", st)
	}
}
