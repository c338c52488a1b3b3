package ops

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/statefile"
	"github.com/sentinel-edge/sentinel/verify"
)

// memStore keeps outcomes in memory (but gives real paths, which do not change).
type memStore struct {
	mu sync.Mutex
	m  map[string]record.SelftestState
}

func (s *memStore) Path(name string) string { return "/nonexistent/" + name }
func (s *memStore) Load(name string) (*record.SelftestState, error) {
	return s.get(name), nil
}
func (s *memStore) Save(name string, st record.SelftestState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]record.SelftestState{}
	}
	s.m[name] = st
	return nil
}
func (s *memStore) get(name string) *record.SelftestState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[name]; ok {
		return &v
	}
	return nil
}

// fileStore is selftest.Store's layout, for the tests of this package (which cannot import
// agent/selftest): the outcomes as JSON files beside the queue.
type fileStore struct{ queuePath string }

func (s fileStore) Path(name string) string { return statefile.Path(s.queuePath, name) }
func (s fileStore) Load(name string) (*record.SelftestState, error) {
	b, err := os.ReadFile(s.Path(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var v record.SelftestState
	if err == nil {
		err = json.Unmarshal(b, &v)
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}
func (s fileStore) Save(name string, st record.SelftestState) error {
	b, _ := json.Marshal(st)
	return statefile.Write(s.Path(name), b)
}

// TestDockingRule (issue #14, finding 2): docked only with a passed verification within
// docked_max_age, the platform answering within platform_max_silence, no failed selftest
// and the install facts complete; the progress follows, each "no" with its reason.
func TestDockingRule(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return record.TS(now.Add(-d)) }
	pass := func(src string, ago time.Duration) *record.SelftestState {
		return &record.SelftestState{OK: true, At: at(ago), Source: src, Version: "v1"}
	}
	fail := func(src string, ago time.Duration, failed ...string) *record.SelftestState {
		return &record.SelftestState{OK: false, At: at(ago), Source: src, Version: "v1", Failed: failed}
	}
	installed := config.Install{Unit: "某超市", Location: "北门", Brand: "Acme", Status: "installed"}
	base := func() dockingFacts {
		return dockingFacts{now: now, install: installed, platformCheck: pass(record.SelftestPlatform, time.Minute),
			lastPlatformOK: now.Add(-5 * time.Second), maxAge: 24 * time.Hour, maxSilence: 10 * time.Minute}
	}
	tests := []struct {
		name   string
		change func(*dockingFacts)
		step   int
		why    string // a reason that must be given ("" when docked)
	}{
		{"docked", func(*dockingFacts) {}, 3, ""},
		{"only provisioned", func(f *dockingFacts) { f.install = config.Install{Status: "installed"} }, 1, "install.unit, install.location, install.brand not set"},
		{"installing", func(f *dockingFacts) { f.install.Status = "installing" }, 1, "install.status is installing"},
		{"selftest failed", func(f *dockingFacts) { f.selftest = fail(record.SelftestCLI, time.Hour, "barrier relay") }, 2, "sentinel selftest (" + at(time.Hour) + ") failed: barrier relay"},
		{"docking-check failed", func(f *dockingFacts) {
			f.dockingCheck = fail(record.SelftestDocking, time.Hour, "signed request accepted")
		}, 2, "docking-check"},
		{"platform check failed", func(f *dockingFacts) { f.platformCheck = fail(record.SelftestPlatform, 0, "platform") }, 2, "platform check"},
		{"no verification", func(f *dockingFacts) { f.platformCheck = nil }, 2, "no docking verification yet"},
		{"verification too old", func(f *dockingFacts) { f.platformCheck = pass(record.SelftestPlatform, 25*time.Hour) }, 2, "older than status.docked_max_age"},
		{"a fresh selftest is evidence", func(f *dockingFacts) {
			f.platformCheck = pass(record.SelftestPlatform, 25*time.Hour)
			f.selftest = pass(record.SelftestCLI, time.Hour)
		}, 3, ""},
		{"platform never answered", func(f *dockingFacts) { f.lastPlatformOK = time.Time{} }, 2, "has not answered since the unit started"},
		{"platform silent", func(f *dockingFacts) { f.lastPlatformOK = now.Add(-11 * time.Minute) }, 2, "status.platform_max_silence 10m0s"},
		{"installing and failed", func(f *dockingFacts) {
			f.install.Status = "installing"
			f.selftest = fail(record.SelftestCLI, time.Hour, "platform")
		}, 1, "install.status is installing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := base()
			tt.change(&f)
			docked, d, p := dockingRule(f)
			if docked != (tt.step == 3) || p.Step != tt.step || p.Of != 3 {
				t.Errorf("docked %v progress %+v, want step %d", docked, p, tt.step)
			}
			why := strings.Join(d.Why, "; ")
			if (tt.why == "") != (why == "") || !strings.Contains(why, tt.why) {
				t.Errorf("why %q, want %q", why, tt.why)
			}
			if docked && (d.Check == "" || d.At == "" || d.Version == "") {
				t.Errorf("docked without its evidence: %+v", d)
			}
		})
	}
}

// stubPinger answers pings as told.
type stubPinger struct {
	up    atomic.Bool
	pings atomic.Int64
}

func (p *stubPinger) Ping(context.Context) (verify.Call, error) {
	p.pings.Add(1)
	if p.up.Load() {
		return verify.Call{Interface: "ping", Status: 200}, nil
	}
	return verify.Call{Interface: "ping"}, verify.ErrUnreachable
}

// TestIdleProbe (issue #14, finding 3): with nobody passing, the platform is pinged every
// platform.probe_interval: its loss is in the status within about one interval and logged
// at WARN, its return at INFO. The heartbeat (1 minute) plays no part.
func TestIdleProbe(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	p := &stubPinger{}
	p.up.Store(true)
	logs := &logBuf{}
	const interval = 100 * time.Millisecond
	f := newFixture(t, t.TempDir(), priv, func(o *Options) {
		o.Pinger = p
		o.Cfg.Platform.ProbeInterval = interval
		o.Log = slogTo(logs)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.o.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitPlatform := func(want string) time.Duration {
		start := time.Now()
		for f.o.Status(ctx).Platform != want {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("platform never %s", want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(start)
	}
	waitPlatform(record.PlatformOnline)
	p.up.Store(false)
	if took := waitPlatform(record.PlatformOffline); took > interval+time.Second {
		t.Errorf("offline after %s, want within about one probe interval (%s)", took, interval)
	}
	s := f.o.Status(ctx)
	if s.PlatformSince == "" || s.Docked {
		t.Errorf("status %+v", s)
	}
	p.up.Store(true)
	waitPlatform(record.PlatformOnline)
	l := logs.String()
	if !strings.Contains(l, `level=WARN msg="platform unreachable`) || !strings.Contains(l, `level=INFO msg="platform reachable again"`) {
		t.Errorf("log:\n%s", l)
	}
	if n := p.pings.Load(); n < 3 {
		t.Errorf("%d pings", n)
	}
}

// TestStoredVerifications: a selftest another process stored beside the queue reaches the
// status within a poll; the status file beside the queue follows, broker or not.
func TestStoredVerifications(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	q := filepath.Join(dir, "queue.db")
	f := newFixture(t, dir, priv, func(o *Options) {
		o.Verifications = fileStore{q}
		o.Timing.StatusPoll = 20 * time.Millisecond
		o.Timing.StatusMinInterval = 10 * time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.o.Run(ctx) }()
	st := record.SelftestState{OK: false, At: record.TS(time.Now()), Failed: []string{"clock"}, Source: record.SelftestCLI}
	if err := (fileStore{q}).Save(SelftestFile, st); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var file record.Status
	for {
		b, err := os.ReadFile(filepath.Join(dir, StatusFile))
		if err == nil && json.Unmarshal(b, &file) == nil && file.Selftest != nil && !file.Selftest.OK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the status file never showed the stored selftest: %s (%v)", b, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if file.Docked || !file.Online || file.Progress == nil || file.Device != "gate-01" {
		t.Errorf("status file %+v", file)
	}
	cancel()
	<-done
	b, _ := os.ReadFile(filepath.Join(dir, StatusFile))
	if json.Unmarshal(b, &file) != nil || file.Online {
		t.Errorf("after a stop the status file says online: %s", b)
	}
}

// TestProvisionedOnlyNotDocked (issue #14, finding 2): a unit that was only provisioned (no
// install facts) is not docked, however well the platform answers; it says why.
func TestProvisionedOnlyNotDocked(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	f := newFixture(t, t.TempDir(), priv, func(o *Options) { o.Cfg.Install.Unit, o.Cfg.Install.Location, o.Cfg.Install.Brand = "", "", "" })
	f.o.Passage(outcome(verify.ReasonOK, verify.ModeOnline, verify.Call{Interface: "qr", Status: 200, Latency: time.Millisecond}))
	f.o.mu.Lock()
	f.o.evidence.platformCheck = &record.SelftestState{OK: true, At: record.TS(time.Now()), Source: record.SelftestPlatform}
	f.o.mu.Unlock()
	s := f.o.Status(context.Background())
	if s.Docked || s.Progress.Step != record.StepInstalling || !strings.Contains(strings.Join(s.Progress.Why, ";"), "install.unit, install.location, install.brand") {
		t.Errorf("a unit with empty unit, location, brand: docked %v progress %+v", s.Docked, s.Progress)
	}
}
