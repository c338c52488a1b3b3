package ops

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/sentinel-edge/sentinel/agent/lane"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/statefile"
	"github.com/sentinel-edge/sentinel/drivers/inputs"
	"github.com/sentinel-edge/sentinel/drivers/relay"
)

func TestCommands(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	_, stranger, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	f := newFixture(t, dir, priv, nil)
	cmd := f.cmd
	unsigned, _ := json.Marshal(record.SignedCommand{Cmd: json.RawMessage(`{"id":"c-x","name":"open"}`)})
	expired := cmd("c-exp", record.CmdOpen, nil)
	expired.ExpiresAt = f.now.Add(-time.Second)
	long := cmd("c-long", record.CmdOpen, nil)
	long.ExpiresAt = f.now.Add(time.Hour)
	other := cmd("c-other", record.CmdOpen, nil)
	other.Device = "gate-02"
	future := cmd("c-future", record.CmdOpen, nil)
	future.IssuedAt = f.now.Add(5 * time.Minute)
	tampered := f.signed(t, priv, cmd("c-tamper", record.CmdOpen, nil))
	tampered = []byte(strings.Replace(string(tampered), "c-tamper", "c-tamp3r", 1))
	mode := func(id, m string) record.Command { return cmd(id, record.CmdMode, map[string]string{"mode": m}) }

	tests := []struct {
		name, topic string
		payload     []byte
		result, why string
		mode        string
		pulses      int
	}{
		{"mode locked", record.CmdMode, f.signed(t, priv, mode("c-1", record.GateModeLocked)), record.ReplyOK, "mode locked", record.GateModeLocked, 0},
		{"open while locked", record.CmdOpen, f.signed(t, priv, cmd("c-2", record.CmdOpen, nil)), record.ReplyRefused, "locked", record.GateModeLocked, 0},
		{"replayed", record.CmdMode, f.signed(t, priv, mode("c-1", record.GateModeLocked)), record.ReplyRefused, "replayed", record.GateModeLocked, 0},
		{"mode normal", record.CmdMode, f.signed(t, priv, mode("c-3", record.GateModeNormal)), record.ReplyOK, "mode normal", record.GateModeNormal, 0},
		{"open", record.CmdOpen, f.signed(t, priv, cmd("c-4", record.CmdOpen, nil)), record.ReplyOK, "opened for 800ms", record.GateModeNormal, 1},
		{"bad mode", record.CmdMode, f.signed(t, priv, mode("c-5", "party")), record.ReplyFailed, "", record.GateModeNormal, 1},
		{"unsigned", record.CmdOpen, unsigned, record.ReplyRefused, "unsigned", record.GateModeNormal, 1},
		{"stranger's key", record.CmdOpen, f.signed(t, stranger, cmd("c-6", record.CmdOpen, nil)), record.ReplyRefused, "bad_signature", record.GateModeNormal, 1},
		{"tampered", record.CmdOpen, tampered, record.ReplyRefused, "bad_signature", record.GateModeNormal, 1},
		{"expired", record.CmdOpen, f.signed(t, priv, expired), record.ReplyRefused, "expired", record.GateModeNormal, 1},
		{"too long", record.CmdOpen, f.signed(t, priv, long), record.ReplyRefused, "validity_too_long", record.GateModeNormal, 1},
		{"from the future", record.CmdOpen, f.signed(t, priv, future), record.ReplyRefused, "not_yet_valid", record.GateModeNormal, 1},
		{"other unit", record.CmdOpen, f.signed(t, priv, other), record.ReplyRefused, "wrong_unit", record.GateModeNormal, 1},
		{"topic and name differ", record.CmdOpen, f.signed(t, priv, mode("c-7", record.GateModeLocked)), record.ReplyRefused, "name_mismatch", record.GateModeNormal, 1},
		{"unknown command", "format", f.signed(t, priv, cmd("c-8", "format", nil)), record.ReplyRefused, "unknown_command", record.GateModeNormal, 1},
		{"not json", record.CmdOpen, []byte(`{"cmd":`), record.ReplyRefused, "malformed", record.GateModeNormal, 1},
		{"junk bytes", record.CmdOpen, []byte{0xff, 0x00, 0x7b}, record.ReplyRefused, "malformed", record.GateModeNormal, 1},
		{"too large", record.CmdOpen, []byte(`{"cmd":"` + strings.Repeat("a", 9000) + `"}`), record.ReplyRefused, "too_large", record.GateModeNormal, 1},
		{"selftest", record.CmdSelftest, f.signed(t, priv, cmd("c-9", record.CmdSelftest, nil)), record.ReplyUnsupported, "this build has no selftest", record.GateModeNormal, 1},
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
			if m := f.lane.GateMode(); m != tt.mode {
				t.Errorf("mode %s, want %s", m, tt.mode)
			}
			if f.rel.Pulses != tt.pulses {
				t.Errorf("relay pulses %d, want %d", f.rel.Pulses, tt.pulses)
			}
		})
	}
	if r := f.send(t, record.CmdMode, f.signed(t, priv, mode("c-10", record.GateModeLocked))); r.Key != record.KeyFingerprint(priv.Public().(ed25519.PublicKey)) {
		t.Errorf("reply key %q, want the operator key's fingerprint", r.Key)
	}

	// Every command, refused or not, is an event in the outbox (and two mode changes made
	// none of their own: only the lane's restore would).
	want := len(tests) + 1
	var n int
	for _, ev := range f.events(t, want) {
		if ev.Type != record.EventCommand || ev.Source != record.SourceCommand || ev.Command == nil {
			t.Errorf("event %+v, want a command event", ev)
		}
		n++
	}
	if n != want {
		t.Errorf("%d command events recorded, want %d", n, want)
	}

	// The nonce survives a restart: the same command is refused by new operations.
	f.close()
	f2 := newFixture(t, dir, priv, nil)
	if r := f2.send(t, record.CmdOpen, f.signed(t, priv, cmd("c-4", record.CmdOpen, nil))); r.Detail != "replayed" {
		t.Errorf("after restart: %s/%s, want refused/replayed", r.Result, r.Detail)
	}

	// A clock that reads 1970 cannot check expiry: refused.
	f2.now = time.Unix(1000, 0)
	if r := f2.send(t, record.CmdOpen, f.signed(t, priv, cmd("c-11", record.CmdOpen, nil))); r.Detail != "clock_unsynced" {
		t.Errorf("unsynced clock: %s/%s, want refused/clock_unsynced", r.Result, r.Detail)
	}
}

// TestRemoteOpenThroughLane: the remote open goes through the lane like a pass — a unit with a
// door sensor raises no door_forced_open when the person walks through — and in hold mode it
// holds the relay for max_pulse at most, ending when the door closed.
func TestRemoteOpenThroughLane(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	for _, hold := range []bool{false, true} {
		name := map[bool]string{false: "pulse", true: "hold"}[hold]
		t.Run(name, func(t *testing.T) {
			out := &gpiotest.Pin{N: "RELAY"}
			rel, err := relay.New(out, relay.Options{MaxPulse: 3 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			door := &gpiotest.Pin{N: "GPIO13", EdgesChan: make(chan gpio.Level, 4)}
			in, err := inputs.New(lane.InputDoorSensor, door, inputs.Options{Debounce: 5 * time.Millisecond}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			var l *lane.Lane
			f := newFixture(t, t.TempDir(), priv, func(o *Options) {
				l = lane.New(lane.Options{Relay: rel, Pulse: 800 * time.Millisecond, MaxPulse: 3 * time.Second, HoldUntilClosed: hold,
					DoorHeldOpen: 10 * time.Second, ForcedGrace: 50 * time.Millisecond, AuthorisedSlack: 100 * time.Millisecond,
					Events: o.Events, Log: quiet()})
				o.Lane = l
			})
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan struct{})
			go func() { defer close(ran); _ = l.Run(ctx, []lane.Input{in}) }()
			t.Cleanup(func() { cancel(); <-ran; _ = rel.Halt() })

			start := time.Now()
			r := f.send(t, record.CmdOpen, f.signed(t, priv, f.cmd("o-1", record.CmdOpen, nil)))
			want := map[bool]string{false: "opened for 800ms", true: "opened for 3s"}[hold]
			if r.Result != record.ReplyOK || r.Detail != want {
				t.Fatalf("reply %s/%q, want ok/%q", r.Result, r.Detail, want)
			}
			door.EdgesChan <- gpio.High // the person walks through the opened barrier
			time.Sleep(300 * time.Millisecond)
			door.EdgesChan <- gpio.Low // and the door closes behind them
			deadline := time.Now().Add(5 * time.Second)
			for {
				out.Lock()
				on := out.L == gpio.High
				out.Unlock()
				if !on {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the relay stayed energised")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if took := time.Since(start); hold && took > 3*time.Second+500*time.Millisecond {
				t.Errorf("hold lasted %s, beyond max_pulse 3s", took)
			}
			for _, ev := range f.events(t, 1) {
				if ev.Type == record.EventDoorForcedOpen || ev.Type == record.EventDoorHeldOpen {
					t.Errorf("a remote open raised %s", ev.Type)
				}
			}
		})
	}
}

// TestReloadCommand: the reload command takes the one reload path (Options.Reload, which
// SIGHUP takes too) and answers with its outcome.
func TestReloadCommand(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	var by []string
	outcome := struct {
		ok     bool
		detail string
	}{true, "applied: install.location; restart needed for: barrier.pin"}
	f := newFixture(t, t.TempDir(), priv, func(o *Options) {
		o.Reload = func(who string) (bool, string) { by = append(by, who); return outcome.ok, outcome.detail }
	})
	reload := func(id string) []byte { return f.signed(t, priv, f.cmd(id, record.CmdReload, nil)) }
	if r := f.send(t, record.CmdReload, reload("r-1")); r.Result != record.ReplyOK || r.Detail != outcome.detail {
		t.Errorf("reload: %s/%s", r.Result, r.Detail)
	}
	outcome.ok, outcome.detail = false, "config invalid (1 problem), first: line 9: install.status: must be one of installed, installing"
	if r := f.send(t, record.CmdReload, reload("r-2")); r.Result != record.ReplyFailed || !strings.Contains(r.Detail, "config invalid") {
		t.Errorf("reload of a bad file: %s/%s", r.Result, r.Detail)
	}
	if strings.Join(by, ",") != "command r-1,command r-2" {
		t.Errorf("reload asked by %q", by)
	}
}

// TestApply: what a reload hands to operations is in force at once: the install facts in
// the status, the operator keys for the next command.
func TestApply(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	f := newFixture(t, t.TempDir(), priv, nil)
	nc := *f.o.opt.Cfg
	nc.Install.Location, nc.Install.Status = "南门", "installing"
	nc.Commands.OperatorKeys = []string{base64.StdEncoding.EncodeToString(other.Public().(ed25519.PublicKey))}
	if err := f.o.Apply(&nc); err != nil {
		t.Fatal(err)
	}
	if s := f.o.Status(context.Background()); s.Location != "南门" || s.InstallStatus != "installing" || s.Unit != "测试单位" {
		t.Errorf("status after Apply: %+v", s)
	}
	cmd := f.cmd("k-1", record.CmdMode, map[string]string{"mode": "locked"})
	if r := f.send(t, record.CmdMode, f.signed(t, priv, cmd)); r.Result != record.ReplyRefused || r.Detail != "bad_signature" {
		t.Errorf("a key taken out by the reload: %s/%s", r.Result, r.Detail)
	}
	cmd.ID = "k-2"
	if r := f.send(t, record.CmdMode, f.signed(t, other, cmd)); r.Result != record.ReplyOK {
		t.Errorf("the key the reload added: %s/%s", r.Result, r.Detail)
	}
}

// TestSelftestCommand: the selftest command runs the live selftest it was given; its
// outcome reaches the status, is stored beside the queue, and keeps the unit from docked.
func TestSelftestCommand(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	store := &memStore{}
	f := newFixture(t, t.TempDir(), priv, func(o *Options) {
		o.Verifications = store
		o.Selftest = func(context.Context) record.SelftestState {
			return record.SelftestState{OK: false, At: record.TS(time.Now()), Failed: []string{"reader qr"}, Source: record.SelftestCommand,
				Detail: "platform: pass; reader qr: OFFLINE"}
		}
	})
	r := f.send(t, record.CmdSelftest, f.signed(t, priv, f.cmd("s-1", record.CmdSelftest, nil)))
	if r.Result != record.ReplyFailed || !strings.Contains(r.Detail, "reader qr: OFFLINE") {
		t.Errorf("selftest reply %s: %s", r.Result, r.Detail)
	}
	s := f.o.Status(context.Background())
	if s.Selftest == nil || s.Selftest.OK || s.Docked || strings.Join(s.Selftest.Failed, ",") != "reader qr" {
		t.Errorf("status after a failed selftest: %+v docked %v", s.Selftest, s.Docked)
	}
	if st := store.get(SelftestFile); st == nil || st.OK || st.Source != record.SelftestCommand {
		t.Errorf("stored: %+v", st)
	}
}

// TestRefusalRateLimit: a flood of refused commands records at most the burst; the next
// recorded event counts the ones left out; a full command queue never blocks the caller and
// is counted too.
func TestRefusalRateLimit(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	f := newFixture(t, t.TempDir(), priv, func(o *Options) { o.Timing.RefusalBurst, o.Timing.RefusalEvery = 2, time.Hour })
	for range 5 {
		if r := f.send(t, record.CmdOpen, []byte(`{"cmd":`)); r.Detail != "malformed" {
			t.Fatalf("junk: %s/%s", r.Result, r.Detail)
		}
	}
	// The commander is not running: its queue fills, and receive must not block.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range cap(f.o.cmds.in) + 10 {
			f.o.cmds.receive(f.o.unit.Topic(record.KindCommand)+"/open", []byte("junk"))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("receive blocked on a full command queue")
	}
	r := f.send(t, record.CmdMode, f.signed(t, priv, f.cmd("ok-1", record.CmdMode, map[string]string{"mode": record.GateModeLocked})))
	if r.Result != record.ReplyOK {
		t.Fatalf("mode: %s/%s", r.Result, r.Detail)
	}
	evs := f.events(t, 3)
	if len(evs) != 3 {
		t.Fatalf("%d events, want 2 refusals and the mode command", len(evs))
	}
	if last := evs[2]; last.Command == nil || last.Command.ID != "ok-1" || last.Suppressed != 3+10 {
		t.Errorf("last event %+v (suppressed %d), want the mode command carrying 3 refusals and 10 overloaded", last.Command, last.Suppressed)
	}
	if got := counterValue(t, f.o, "sentinel_commands_total", map[string]string{"name": "open", "result": "refused:malformed"}); got != 5 {
		t.Errorf("refused:malformed counted %v, want 5", got)
	}
	if got := counterValue(t, f.o, "sentinel_commands_total", map[string]string{"name": "open", "result": "refused:overloaded"}); got != 10 {
		t.Errorf("refused:overloaded counted %v, want 10", got)
	}
}

// A mode command whose state file cannot be written is done, and its reply says it did not
// stick.
func TestModeCommandNotPersisted(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	f := newFixture(t, dir, priv, nil)
	modePath := filepath.Join(dir, lane.ModeFileName)
	if err := statefile.Write(modePath, []byte(`{"mode":"always_open"}`)); err != nil {
		t.Fatal(err)
	}
	f.lane.RestoreGateMode()
	f.lane.AssertGateMode()
	if !f.rel.Held() || f.o.Status(context.Background()).Mode != record.GateModeAlwaysOpen {
		t.Fatal("the restored always_open is not in force")
	}
	if err := os.Remove(modePath); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(modePath, 0o700); err != nil { // rename onto a directory fails
		t.Fatal(err)
	}
	r := f.send(t, record.CmdMode, f.signed(t, priv, f.cmd("m-1", record.CmdMode, map[string]string{"mode": record.GateModeLocked})))
	if r.Result != record.ReplyOK || !strings.Contains(r.Detail, "NOT persisted") || f.lane.GateMode() != record.GateModeLocked {
		t.Errorf("mode with an unwritable file: %s/%s, mode %s", r.Result, r.Detail, f.lane.GateMode())
	}
	if f.rel.Held() {
		t.Error("locked left the relay held")
	}
}
