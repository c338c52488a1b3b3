package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/clock"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// opsRelay is a relay that can be held open and counts what it was told.
type opsRelay struct {
	mu     sync.Mutex
	pulses int
	held   bool
}

func (r *opsRelay) Pulse(context.Context, time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pulses++
	return nil
}
func (r *opsRelay) Hold() error    { r.mu.Lock(); defer r.mu.Unlock(); r.held = true; return nil }
func (r *opsRelay) Release() error { r.mu.Lock(); defer r.mu.Unlock(); r.held = false; return nil }
func (r *opsRelay) Halt() error    { return r.Release() }
func (r *opsRelay) String() string { return "ops-test relay" }
func (r *opsRelay) state() (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pulses, r.held
}

// opsOutbox keeps records in memory.
type opsOutbox struct{ recs []Record }

func (o *opsOutbox) AppendID(_ context.Context, stream, topic, id string, build func(int64, string) ([]byte, error)) (queue.Entry, error) {
	b, err := build(int64(len(o.recs)+1), id)
	if err != nil {
		return queue.Entry{}, err
	}
	var r Record
	_ = json.Unmarshal(b, &r)
	o.recs = append(o.recs, r)
	return queue.Entry{ID: id, Stream: stream, Topic: topic, Payload: b}, nil
}

type opsDecision verify.Decision

func (d opsDecision) Decide(context.Context, verify.Credential, string) verify.Decision {
	return verify.Decision(d)
}

func swapClock(t *testing.T, synced bool, now func() time.Time) {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	prev := clockState
	clockState = func() string {
		if !synced || now().Year() < clock.MinTrustedYear {
			return clock.Unsynced
		}
		return clock.Synced
	}
	t.Cleanup(func() { clockState = prev })
}

// TestPipelineModesAndClock: a unit that booted at 1970 keeps deciding and opening, and its
// records say unsynced; the remote modes decide what the barrier does.
func TestPipelineModesAndClock(t *testing.T) {
	boot := time.Unix(42, 0)
	swapClock(t, true, func() time.Time { return boot })
	pass := opsDecision{Verdict: verify.Pass, Reason: verify.ReasonOK, Mode: verify.ModeOnline}
	deny := opsDecision{Verdict: verify.Deny, Reason: verify.ReasonHealthCodeRed, Mode: verify.ModeOnline}
	tests := []struct {
		name       string
		mode       string
		dec        Decider
		wantGate   string
		wantMode   string
		wantPulses int
		wantHeld   bool
	}{
		{"normal pass", ModeNormal, pass, GateOpened, "", 1, false},
		{"normal deny", ModeNormal, deny, GateNotOpened, "", 0, false},
		{"locked pass", ModeLocked, pass, GateNotOpened, ModeLocked, 0, false},
		{"always open deny", ModeAlwaysOpen, deny, GateHeldOpen, ModeAlwaysOpen, 0, true},
		{"always open pass", ModeAlwaysOpen, pass, GateHeldOpen, ModeAlwaysOpen, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel := &opsRelay{}
			ob := &opsOutbox{}
			p := &Pipeline{Device: "gate-01", Venue: "v", Topic: "t", Decider: tt.dec, Outbox: ob, Relay: rel,
				Pulse: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return boot },
				Gate: NewGateMode(rel, nil)}
			if err := p.Gate.Set(tt.mode); err != nil {
				t.Fatal(err)
			}
			pg, err := p.Handle(context.Background(), verify.Credential{Kind: verify.KindQR, QRToken: "HC-1"}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			r := pg.Record
			if r.Clock != clock.Unsynced || !strings.HasPrefix(r.TS, "1970-") {
				t.Errorf("record clock %q ts %q, want unsynced at 1970", r.Clock, r.TS)
			}
			if r.Gate != tt.wantGate || r.GateMode != tt.wantMode {
				t.Errorf("gate %s mode %q, want %s %q", r.Gate, r.GateMode, tt.wantGate, tt.wantMode)
			}
			if pulses, held := rel.state(); pulses != tt.wantPulses || held != tt.wantHeld {
				t.Errorf("relay pulses %d held %v, want %d %v", pulses, held, tt.wantPulses, tt.wantHeld)
			}
			if err := p.Gate.Set(ModeNormal); err != nil {
				t.Fatal(err)
			}
			if _, held := rel.state(); held {
				t.Error("back to normal, the relay is still held")
			}
		})
	}
	// always_open needs a relay that can be held.
	if err := NewGateMode(nil, nil).Set(ModeAlwaysOpen); err == nil {
		t.Error("always_open without a barrier accepted")
	}
	if err := NewGateMode(nil, nil).Set("party"); err == nil {
		t.Error("unknown mode accepted")
	}
}

// cmdFixture is a daemon core with a real outbox and a commander.
type cmdFixture struct {
	d       *Daemon
	st      *opsState
	c       *commander
	rel     *opsRelay
	priv    ed25519.PrivateKey
	mu      sync.Mutex
	replies map[string][]CommandReply
}

const cmdFixtureYAML = `device: {id: gate-01, venue: "350582-0001", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: /dev/null}
platform: {url: "http://127.0.0.1:1"}
barrier: {driver: fake}
queue: {path: %QUEUE%}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
install: {unit: 测试单位, location: 北门, brand: Acme, style_label: 闸机一体机, status: installed}
commands: {operator_keys: ["%KEY%"], max_age: 10m}
`

// newCmdFixture returns a fixture whose event recorder runs until the test ends.
func newCmdFixture(t *testing.T, dir string, priv ed25519.PrivateKey) *cmdFixture {
	t.Helper()
	f := newCmdFixtureIdle(t, dir, priv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.st.events.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done }) // before the outbox closes
	return f
}

// newCmdFixtureIdle returns a fixture whose event recorder does not run (the ops part's run
// runs it).
func newCmdFixtureIdle(t *testing.T, dir string, priv ed25519.PrivateKey) *cmdFixture {
	t.Helper()
	pub := priv.Public().(ed25519.PublicKey)
	y := strings.NewReplacer("%QUEUE%", filepath.Join(dir, "queue.db"), "%KEY%", base64.StdEncoding.EncodeToString(pub)).Replace(cmdFixtureYAML)
	path := filepath.Join(dir, "sentinel.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := queue.Open(cfg.Queue.Path, queue.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	f := &cmdFixture{rel: &opsRelay{}, priv: priv, replies: map[string][]CommandReply{}}
	f.d = &Daemon{Cfg: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Opt: Options{ConfigPath: path}, Relay: f.rel, Outbox: ob}
	f.st = f.d.ops()
	f.c, err = newCommander(f.d, f.st, func(topic string, retained bool, b []byte) error {
		if retained || !strings.HasSuffix(topic, "/reply") {
			t.Errorf("reply on %s retained=%v", topic, retained)
		}
		var r CommandReply
		if err := json.Unmarshal(b, &r); err != nil {
			t.Errorf("reply not JSON: %v", err)
		}
		f.mu.Lock()
		f.replies[topic] = append(f.replies[topic], r)
		f.mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *cmdFixture) send(t *testing.T, name string, payload []byte) CommandReply {
	t.Helper()
	topic := Topic(f.d.Cfg, "cmd") + "/" + name
	f.c.handle(context.Background(), inbound{topic: topic, payload: payload})
	f.mu.Lock()
	defer f.mu.Unlock()
	rs := f.replies[topic+"/reply"]
	if len(rs) == 0 {
		t.Fatalf("no reply to %s", name)
	}
	return rs[len(rs)-1]
}

func (f *cmdFixture) signed(t *testing.T, key ed25519.PrivateKey, cmd Command) []byte {
	t.Helper()
	b, err := SignCommand(key, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCommands(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	swapClock(t, true, func() time.Time { return now })
	cn := cmdNow
	cmdNow = func() time.Time { return now }
	t.Cleanup(func() { cmdNow = cn })
	st := SelftestCommand
	SelftestCommand = nil
	t.Cleanup(func() { SelftestCommand = st })

	_, priv, _ := ed25519.GenerateKey(nil)
	_, stranger, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	f := newCmdFixture(t, dir, priv)
	cmd := func(id, name string, args map[string]string) Command {
		return Command{ID: id, Name: name, Venue: "350582-0001", Device: "gate-01", IssuedAt: now.Add(-time.Second), ExpiresAt: now.Add(time.Minute), Args: args}
	}
	unsigned, _ := json.Marshal(SignedCommand{Cmd: json.RawMessage(`{"id":"c-x","name":"open"}`)})
	expired := cmd("c-exp", CmdOpen, nil)
	expired.ExpiresAt = now.Add(-time.Second)
	long := cmd("c-long", CmdOpen, nil)
	long.ExpiresAt = now.Add(time.Hour)
	other := cmd("c-other", CmdOpen, nil)
	other.Device = "gate-02"
	future := cmd("c-future", CmdOpen, nil)
	future.IssuedAt = now.Add(5 * time.Minute)
	tampered := f.signed(t, priv, cmd("c-tamper", CmdOpen, nil))
	tampered = []byte(strings.Replace(string(tampered), "c-tamper", "c-tamp3r", 1))

	tests := []struct {
		name, topic string
		payload     []byte
		result, why string
		mode        string
		pulses      int
	}{
		{"mode locked", CmdMode, f.signed(t, priv, cmd("c-1", CmdMode, map[string]string{"mode": ModeLocked})), ResultOK, "mode locked", ModeLocked, 0},
		{"open while locked", CmdOpen, f.signed(t, priv, cmd("c-2", CmdOpen, nil)), ResultRefused, "locked", ModeLocked, 0},
		{"replayed", CmdMode, f.signed(t, priv, cmd("c-1", CmdMode, map[string]string{"mode": ModeLocked})), ResultRefused, "replayed", ModeLocked, 0},
		{"mode normal", CmdMode, f.signed(t, priv, cmd("c-3", CmdMode, map[string]string{"mode": ModeNormal})), ResultOK, "mode normal", ModeNormal, 0},
		{"open", CmdOpen, f.signed(t, priv, cmd("c-4", CmdOpen, nil)), ResultOK, "opened for 800ms", ModeNormal, 1},
		{"bad mode", CmdMode, f.signed(t, priv, cmd("c-5", CmdMode, map[string]string{"mode": "party"})), ResultFailed, "", ModeNormal, 1},
		{"unsigned", CmdOpen, unsigned, ResultRefused, "unsigned", ModeNormal, 1},
		{"stranger's key", CmdOpen, f.signed(t, stranger, cmd("c-6", CmdOpen, nil)), ResultRefused, "bad_signature", ModeNormal, 1},
		{"tampered", CmdOpen, tampered, ResultRefused, "bad_signature", ModeNormal, 1},
		{"expired", CmdOpen, f.signed(t, priv, expired), ResultRefused, "expired", ModeNormal, 1},
		{"too long", CmdOpen, f.signed(t, priv, long), ResultRefused, "validity_too_long", ModeNormal, 1},
		{"from the future", CmdOpen, f.signed(t, priv, future), ResultRefused, "not_yet_valid", ModeNormal, 1},
		{"other unit", CmdOpen, f.signed(t, priv, other), ResultRefused, "wrong_unit", ModeNormal, 1},
		{"topic and name differ", CmdOpen, f.signed(t, priv, cmd("c-7", CmdMode, map[string]string{"mode": ModeLocked})), ResultRefused, "name_mismatch", ModeNormal, 1},
		{"unknown command", "format", f.signed(t, priv, cmd("c-8", "format", nil)), ResultRefused, "unknown_command", ModeNormal, 1},
		{"not json", CmdOpen, []byte(`{"cmd":`), ResultRefused, "malformed", ModeNormal, 1},
		{"junk bytes", CmdOpen, []byte{0xff, 0x00, 0x7b}, ResultRefused, "malformed", ModeNormal, 1},
		{"too large", CmdOpen, []byte(`{"cmd":"` + strings.Repeat("a", 9000) + `"}`), ResultRefused, "too_large", ModeNormal, 1},
		{"selftest", CmdSelftest, f.signed(t, priv, cmd("c-9", CmdSelftest, nil)), ResultUnsupported, "this build has no selftest", ModeNormal, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.send(t, tt.topic, tt.payload)
			if r.Result != tt.result || (tt.why != "" && r.Detail != tt.why) {
				t.Errorf("reply %s/%q, want %s/%q", r.Result, r.Detail, tt.result, tt.why)
			}
			if r.Device != "gate-01" || r.Venue != "350582-0001" || r.TS == "" {
				t.Errorf("reply lacks the unit or time: %+v", r)
			}
			if m := f.st.mode.Mode(); m != tt.mode {
				t.Errorf("mode %s, want %s", m, tt.mode)
			}
			if p, _ := f.rel.state(); p != tt.pulses {
				t.Errorf("relay pulses %d, want %d", p, tt.pulses)
			}
		})
	}
	if r := f.send(t, CmdMode, f.signed(t, priv, cmd("c-10", CmdMode, map[string]string{"mode": ModeLocked}))); r.Key != KeyFingerprint(priv.Public().(ed25519.PublicKey)) {
		t.Errorf("reply key %q, want the operator key's fingerprint", r.Key)
	}

	// Every command, refused or not, is an event in the outbox.
	want := len(tests) + 1
	var events int
	for _, ev := range waitEvents(t, f.d, want) {
		if ev.Type != EventCommand || ev.Source != SourceCommand || ev.Command == nil {
			t.Errorf("event %+v, want a command event", ev)
		}
		events++
	}
	if events != want {
		t.Errorf("%d command events recorded, want %d", events, want)
	}

	// The nonce survives a restart: the same command is refused by a new commander.
	f2 := newCmdFixture(t, dir, priv)
	if r := f2.send(t, CmdOpen, f.signed(t, priv, cmd("c-4", CmdOpen, nil))); r.Detail != "replayed" {
		t.Errorf("after restart: %s/%s, want refused/replayed", r.Result, r.Detail)
	}

	// A clock that reads 1970 cannot check expiry: refused.
	cmdNow = func() time.Time { return time.Unix(1000, 0) }
	if r := f2.send(t, CmdOpen, f.signed(t, priv, cmd("c-11", CmdOpen, nil))); r.Detail != "clock_unsynced" {
		t.Errorf("unsynced clock: %s/%s, want refused/clock_unsynced", r.Result, r.Detail)
	}
}

func TestReloadCommand(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	swapClock(t, true, func() time.Time { return now })
	cn := cmdNow
	cmdNow = func() time.Time { return now }
	t.Cleanup(func() { cmdNow = cn })
	_, priv, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	f := newCmdFixture(t, dir, priv)
	cmd := func(id string) []byte {
		return f.signed(t, priv, Command{ID: id, Name: CmdReload, Venue: "350582-0001", Device: "gate-01", IssuedAt: now, ExpiresAt: now.Add(time.Minute)})
	}
	path := f.d.Opt.ConfigPath
	b, _ := os.ReadFile(path)
	changed := strings.Replace(strings.Replace(string(b), "status: installed", "status: installing", 1), "北门", "南门", 1)
	changed = strings.Replace(changed, `platform: {url: "http://127.0.0.1:1"}`, `platform: {url: "http://127.0.0.1:2"}`, 1)
	if err := os.WriteFile(path, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	r := f.send(t, CmdReload, cmd("r-1"))
	if r.Result != ResultOK || !strings.Contains(r.Detail, "restart needed for: platform") {
		t.Errorf("reload: %s/%s", r.Result, r.Detail)
	}
	s := f.st.status(context.Background())
	if s.InstallStatus != "installing" || s.Location != "南门" || s.Unit != "测试单位" {
		t.Errorf("status after reload: %+v", s)
	}
	if err := os.WriteFile(path, []byte(changed+"install: {status: broken}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := f.send(t, CmdReload, cmd("r-2")); r.Result != ResultFailed || !strings.Contains(r.Detail, "config invalid") {
		t.Errorf("reload of a bad file: %s/%s", r.Result, r.Detail)
	}
	if s := f.st.status(context.Background()); s.InstallStatus != "installing" {
		t.Errorf("a bad file changed the status: %+v", s)
	}
}

func TestStatusContent(t *testing.T) {
	swapClock(t, true, nil)
	_, priv, _ := ed25519.GenerateKey(nil)
	f := newCmdFixture(t, t.TempDir(), priv)
	d := f.d
	d.SetReaderState("qr", true)
	d.SetFireAlarm(false)
	s := f.st.status(context.Background())
	b, _ := json.Marshal(s)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for _, k := range []string{"online", "unit", "location", "brand", "style", "install_status", "docked", "version", "queue_pending"} {
		if _, ok := m[k]; !ok {
			t.Errorf("status lacks %q: %s", k, b)
		}
	}
	if s.Docked || s.Platform != PlatformUnknown || s.Style != "闸机一体机" || s.Readers["qr"] != "online" || s.FireAlarm != FireAlarmNormal {
		t.Errorf("status %s", b)
	}
	sig := significant(s)
	f.st.platformCall(verify.Decision{Verdict: verify.Pass, Reason: verify.ReasonOK, Mode: verify.ModeOnline, Call: &verify.Call{Interface: "qr", Status: 200, Latency: time.Millisecond}})
	s2 := f.st.status(context.Background())
	if !s2.Docked || s2.Platform != PlatformOnline || s2.LastPlatformOK == "" || significant(s2) == sig {
		t.Errorf("after a successful call: docked=%v platform=%s", s2.Docked, s2.Platform)
	}
	d.SetSelftest(false, "relay: no feedback")
	if s3 := f.st.status(context.Background()); s3.Docked {
		t.Error("a failed selftest leaves the unit docked")
	}
	f.st.platformCall(verify.Decision{Verdict: verify.Deny, Reason: verify.ReasonPlatformUnreachable, Mode: verify.ModeOffline, Call: &verify.Call{Interface: "qr"}})
	if s4 := f.st.status(context.Background()); s4.Platform != PlatformOffline {
		t.Errorf("platform %s after an unreachable call", s4.Platform)
	}
	later := f.st.status(context.Background())
	later.TS, later.QueueOldestAge = "2099-01-01T00:00:00.000Z", 99
	if significant(later) != significant(f.st.status(context.Background())) {
		t.Error("the time and the queue's age must not count as a change")
	}
}

// TestListenerPortTaken: a taken port does not stop the part; it binds once the port frees.
func TestListenerPortTaken(t *testing.T) {
	br := bindRetry
	bindRetry = 10 * time.Millisecond
	t.Cleanup(func() { bindRetry = br })
	squat, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := squat.Addr().String()
	d := &Daemon{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	bound := make(chan net.Listener, 1)
	done := make(chan error, 1)
	go func() {
		done <- serveLoopback(ctx, d, "metrics.listen", addr, false, http.NotFoundHandler(), func(l net.Listener) { bound <- l })
	}()
	select {
	case <-bound:
		t.Fatal("bound a taken port")
	case <-time.After(50 * time.Millisecond):
	}
	squat.Close()
	select {
	case l := <-bound:
		if l.Addr().String() != addr {
			t.Errorf("bound %s, want %s", l.Addr(), addr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("never bound after the port was freed")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serveLoopback: %v", err)
	}
	if _, err := listenLoopback(d, "screen.listen", "0.0.0.0:0", false); err == nil {
		t.Error("a non-loopback address was bound without allow_remote")
	}
}

// TestSelftestCommand: the live selftest claims no device and reports what fails.
func TestSelftestCommand(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	swapClock(t, true, func() time.Time { return now })
	cn := cmdNow
	cmdNow = func() time.Time { return now }
	t.Cleanup(func() { cmdNow = cn })
	_, priv, _ := ed25519.GenerateKey(nil)
	f := newCmdFixture(t, t.TempDir(), priv)
	f.d.SetReaderState("qr", false)
	r := f.send(t, CmdSelftest, f.signed(t, priv, Command{ID: "s-1", Name: CmdSelftest, Venue: "350582-0001", Device: "gate-01", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}))
	// Nothing listens on the platform's and the broker's port 1: both fail, and so does the reader.
	if r.Result != ResultFailed || !strings.Contains(r.Detail, "platform: fail") || !strings.Contains(r.Detail, "broker: fail") ||
		!strings.Contains(r.Detail, "reader qr: OFFLINE") || !strings.Contains(r.Detail, "clock: pass") {
		t.Errorf("selftest reply %s: %s", r.Result, r.Detail)
	}
	if s := f.st.status(context.Background()); s.Selftest == nil || s.Selftest.OK || s.Docked {
		t.Errorf("status after a failed selftest: %+v", s.Selftest)
	}
}
