package idcard_test

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/sentinel-edge/sentinel/drivers/idcard"
	"github.com/sentinel-edge/sentinel/sim/card"
	"github.com/sentinel-edge/sentinel/sim/scanner"
)

// TestProbe: the commissioning check asks the simulated SAM for its status over a pty: a
// healthy SAM passes, a failing SAM is reported with its SW3 code (and not reset), a silent
// reader times out, and a missing port fails to open.
func TestProbe(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pty simulator is Linux-only")
	}
	idcard.FastTiming(t)
	tests := []struct {
		name    string
		prepare func(r *card.Reader)
		check   func(t *testing.T, err error)
	}{
		{"healthy", func(*card.Reader) {}, func(t *testing.T, err error) {
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
		}},
		{"SAM fails its self-test", func(r *card.Reader) { r.FailSAM() }, func(t *testing.T, err error) {
			var se *idcard.StatusError
			if !errors.As(err, &se) || se.Status != idcard.StatusSelfTest {
				t.Fatalf("Probe: %v, want status %s", err, idcard.StatusSelfTest)
			}
		}},
		{"silent", func(r *card.Reader) { r.Inject(card.FaultSilent) }, func(t *testing.T, err error) {
			if !errors.Is(err, idcard.ErrTimeout) {
				t.Fatalf("Probe: %v, want ErrTimeout", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ttyID")
			dup, err := scanner.OpenDuplex(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer dup.Close()
			sim := card.New(dup, card.Options{})
			tt.prepare(sim)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = sim.Serve(ctx) }()
			defer func() { cancel(); dup.Close(); <-done }()
			err = idcard.NewSAM(idcard.Config{Port: path}, nil).Probe(context.Background())
			tt.check(t, err)
			if n := sim.Requests(idcard.CmdReset); n != 0 {
				t.Errorf("Probe reset the SAM %d times; it must only ask", n)
			}
		})
	}
	err := idcard.NewSAM(idcard.Config{Port: filepath.Join(t.TempDir(), "none")}, nil).Probe(context.Background())
	if err == nil {
		t.Fatal("Probe of a missing port succeeded")
	}
}
