package ops

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/clock"
	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/events"
	"github.com/sentinel-edge/sentinel/agent/lane"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/drivers/relay/relaytest"
	"github.com/sentinel-edge/sentinel/queue"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fixedUplink is an uplink that is or is not connected.
type fixedUplink bool

func (u fixedUplink) Connected() bool { return bool(u) }

func (u fixedUplink) BrokerOrder() []string { return nil }

// fixture is a unit's operations over a real outbox, a lane on a fake relay and the real
// event recorder; command replies are captured instead of published.
type fixture struct {
	o       *Ops
	cfgPath string
	ob      *queue.Outbox
	rel     *relaytest.Relay
	lane    *lane.Lane
	rec     *events.Recorder
	priv    ed25519.PrivateKey
	now     time.Time
	mu      sync.Mutex
	replies map[string][]record.CommandReply
	closed  sync.Once
	stop    func()
}

// close stops the recorder and closes the outbox, as a unit stopping does (a process opens
// its queue once: a second fixture on the same directory needs the first one closed).
func (f *fixture) close() { f.closed.Do(f.stop) }

const fixtureYAML = `device: {id: gate-01, venue: "350582-0001", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: /dev/null}
platform: {url: "http://127.0.0.1:1"}
barrier: {driver: fake}
queue: {path: %QUEUE%}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
install: {unit: 测试单位, location: 北门, brand: Acme, style_label: 闸机一体机, status: installed}
commands: {operator_keys: ["%KEY%"], max_age: 10m}
`

var fixtureNow = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)

// newFixture builds the fixture in dir; tune, when set, changes the options before New.
func newFixture(t *testing.T, dir string, priv ed25519.PrivateKey, tune func(*Options)) *fixture {
	t.Helper()
	pub := priv.Public().(ed25519.PublicKey)
	y := strings.NewReplacer("%QUEUE%", filepath.Join(dir, "queue.db"), "%KEY%", base64.StdEncoding.EncodeToString(pub)).Replace(fixtureYAML)
	path := filepath.Join(dir, "sentinel.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := queue.Open(cfg.Queue.Path, queue.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{cfgPath: path, ob: ob, rel: relaytest.New(), priv: priv, now: fixtureNow, replies: map[string][]record.CommandReply{}}
	synced := func() string { return clock.Synced }
	unit := record.Unit{Prefix: cfg.Uplink.TopicPrefix, Venue: cfg.Device.Venue, Device: cfg.Device.ID}
	f.rec = events.New(ob, events.Options{Unit: unit, Log: quiet(), Clock: synced})
	f.lane = lane.New(lane.Options{Relay: f.rel, Pulse: cfg.Barrier.Pulse, MaxPulse: cfg.Barrier.MaxPulse,
		ModeFile: filepath.Join(dir, lane.ModeFileName), Events: f.rec, Log: quiet(), Clock: synced})
	opt := Options{Cfg: cfg, Lane: f.lane, Queue: ob, Uplink: fixedUplink(false), Events: f.rec,
		Clock: synced, Now: func() time.Time { return f.now }, Log: quiet()}
	if tune != nil {
		tune(&opt)
	}
	if f.o, err = New(opt); err != nil {
		t.Fatal(err)
	}
	f.o.cmds.publish = func(topic string, retained bool, b []byte) error {
		if retained || !strings.HasSuffix(topic, "/reply") {
			t.Errorf("reply on %s retained=%v", topic, retained)
		}
		var r record.CommandReply
		if err := json.Unmarshal(b, &r); err != nil {
			t.Errorf("reply not JSON: %v", err)
		}
		f.mu.Lock()
		f.replies[topic] = append(f.replies[topic], r)
		f.mu.Unlock()
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.rec.Run(ctx) }()
	f.stop = func() { cancel(); <-done; ob.Close() } // the recorder stops before the outbox closes
	t.Cleanup(f.close)
	return f
}

func (f *fixture) send(t *testing.T, name string, payload []byte) record.CommandReply {
	t.Helper()
	topic := f.o.unit.Topic(record.KindCommand) + "/" + name
	f.o.cmds.handle(context.Background(), inbound{topic: topic, payload: payload})
	f.mu.Lock()
	defer f.mu.Unlock()
	rs := f.replies[topic+"/reply"]
	if len(rs) == 0 {
		t.Fatalf("no reply to %s", name)
	}
	return rs[len(rs)-1]
}

func (f *fixture) cmd(id, name string, args map[string]string) record.Command {
	return record.Command{ID: id, Name: name, Venue: "350582-0001", Device: "gate-01", IssuedAt: f.now.Add(-time.Second), ExpiresAt: f.now.Add(time.Minute), Args: args}
}

func (f *fixture) signed(t *testing.T, key ed25519.PrivateKey, cmd record.Command) []byte {
	t.Helper()
	b, err := record.SignCommand(key, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// events waits until the recorder handled n events and returns the events in the outbox.
func (f *fixture) events(t *testing.T, n int) []record.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s := f.rec.Stats(); s.Stored+s.Failed < int64(n); s = f.rec.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("the recorder handled %d events within 5s, want %d", s.Stored+s.Failed, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	pend, err := f.ob.Pending(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var evs []record.Event
	for _, e := range pend {
		if e.Stream != record.StreamEvent {
			continue
		}
		if e.Topic != f.o.unit.Topic(record.StreamEvent) {
			t.Errorf("event on topic %s", e.Topic)
		}
		var ev record.Event
		if err := json.Unmarshal(e.Payload, &ev); err != nil {
			t.Fatalf("event not JSON: %v", err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// counterValue reads a counter or gauge from the registry (0 when absent).
func counterValue(t *testing.T, o *Ops, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := o.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
