package idcard_test

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/idcard"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/sim/card"
	"github.com/sentinel-edge/sentinel/sim/population"
	"github.com/sentinel-edge/sentinel/sim/scanner"
)

// rig is the real driver on a pty served by the card simulator.
type rig struct {
	t      *testing.T
	path   string
	pop    []population.Person
	sim    *card.Reader
	port   *scanner.Duplex
	stop   context.CancelFunc
	done   chan struct{}
	drv    *idcard.SAM
	cards  chan idcard.Card
	states chan bool
	opt    card.Options
}

func newRig(t *testing.T, opt card.Options) *rig {
	t.Helper()
	return newRigWith(t, opt, idcard.Config{})
}

// newRigWith is newRig with the driver's config (its Port and OnState are the rig's).
func newRigWith(t *testing.T, opt card.Options, cfg idcard.Config) *rig {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("pty simulator is Linux-only")
	}
	idcard.FastTiming(t)
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "ttyID"), opt: opt,
		pop:   population.Generate(population.GenerateOptions{Seed: 7, Random: 2}),
		cards: make(chan idcard.Card, 16), states: make(chan bool, 256)}
	r.plug()
	cfg.Port = r.path
	cfg.OnState = func(on bool, _ error) {
		select {
		case r.states <- on:
		default:
		}
	}
	r.drv = idcard.NewSAM(cfg, nil)
	if err := r.drv.Open(); err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.drv.Run(ctx, func(c idcard.Card) { r.cards <- c }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
		r.unplug()
	})
	return r
}

// plug creates the pty and starts the simulator on it.
func (r *rig) plug() {
	r.t.Helper()
	p, err := scanner.OpenDuplex(r.path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	var prev *card.Reader = r.sim
	r.port, r.sim = p, card.New(p, r.opt)
	if prev != nil {
		r.sim.Present(prev.Current())
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop, r.done = cancel, make(chan struct{})
	go func() { defer close(r.done); _ = r.sim.Serve(ctx) }()
}

// unplug deletes the pty, as pulling the USB reader out does.
func (r *rig) unplug() {
	if r.port == nil {
		return
	}
	r.stop()
	_ = r.port.Close()
	<-r.done
	r.port = nil
}

func (r *rig) present(i int) idcard.Info {
	info := card.FromPerson(r.pop[i])
	r.sim.Present(&info)
	return info
}

func (r *rig) wantCard(want idcard.Info, within time.Duration) {
	r.t.Helper()
	select {
	case c := <-r.cards:
		if c.IDNumber != want.IDNumber || c.Name != want.Name {
			r.t.Fatalf("read %s, want %s", privacy.MaskID(c.IDNumber), privacy.MaskID(want.IDNumber))
		}
		if c.Photo.Len() != idcard.PhotoSize {
			r.t.Errorf("photo of %d bytes", c.Photo.Len())
		}
	case <-time.After(within):
		r.t.Fatalf("no card within %s (stats %+v)", within, r.drv.Stats())
	}
}

func (r *rig) wantState(on bool, within time.Duration) time.Time {
	r.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case s := <-r.states:
			if s == on {
				return time.Now()
			}
		case <-deadline:
			r.t.Fatalf("reader not online=%v within %s (stats %+v)", on, within, r.drv.Stats())
		}
	}
}

func (r *rig) noCard(within time.Duration) {
	r.t.Helper()
	select {
	case c := <-r.cards:
		r.t.Fatalf("unexpected read of %s", privacy.MaskID(c.IDNumber))
	case <-time.After(within):
	}
}

func TestReadsEachCardOnce(t *testing.T) {
	r := newRig(t, card.Options{})
	r.wantState(true, 5*time.Second)
	a := r.present(0)
	r.wantCard(a, 5*time.Second)
	r.noCard(200 * time.Millisecond) // left lying on the reader: not read again
	b := r.present(1)
	r.wantCard(b, 5*time.Second)
	r.sim.Present(nil)
	waitFor(t, func() bool { return r.drv.Stats().NoCard > 0 })
	r.present(1)
	r.wantCard(b, 5*time.Second) // taken off and laid again: a new passage
}

// TestFaults: every kind of bad reply is counted, and the reader keeps reading.
func TestFaults(t *testing.T) {
	for _, f := range card.Faults {
		t.Run(string(f), func(t *testing.T) {
			r := newRig(t, card.Options{Every: 4, Faults: []card.Fault{f}})
			r.wantState(true, 5*time.Second)
			a := r.present(0)
			r.wantCard(a, 10*time.Second)
			st := r.drv.Stats()
			switch f {
			case card.FaultChecksum:
				if st.BadChecksum == 0 {
					t.Errorf("no bad checksum counted: %+v", st)
				}
			case card.FaultLength, card.FaultSilent:
				if st.Failures == 0 {
					t.Errorf("no failure counted: %+v", st)
				}
			case card.FaultNoise:
				if st.Noise == 0 {
					t.Errorf("no noise counted: %+v", st)
				}
			}
		})
	}
}

// TestSAMFailureResets: a SAM failing its status check is reset and the reader carries on.
func TestSAMFailureResets(t *testing.T) {
	r := newRig(t, card.Options{})
	r.wantState(true, 5*time.Second)
	r.sim.FailSAM()
	waitFor(t, func() bool { return r.drv.Stats().Resets > 0 })
	a := r.present(2)
	r.wantCard(a, 5*time.Second)
}

// TestHotPlug: the reader is unplugged (the pty deleted) and plugged back (re-created); it
// goes offline, comes back and reads again within 2 s of returning.
func TestHotPlug(t *testing.T) {
	r := newRig(t, card.Options{})
	r.wantState(true, 5*time.Second)
	a := r.present(0)
	r.wantCard(a, 5*time.Second)
	r.unplug()
	r.wantState(false, 5*time.Second)
	time.Sleep(300 * time.Millisecond) // stays away long enough for the backoff to grow
	back := time.Now()
	r.plug()
	b := r.present(1)
	r.wantState(true, 2*time.Second+time.Second)
	r.wantCard(b, 2*time.Second+time.Second)
	if d := time.Since(back); d > 2*time.Second {
		t.Errorf("reading again %s after the reader returned, want within 2s", d)
	}
	if r.drv.Stats().Reopens == 0 {
		t.Error("no reopen counted")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
