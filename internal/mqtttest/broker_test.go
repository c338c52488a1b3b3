package mqtttest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func publish(t *testing.T, url, topic string, payloads ...string) {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("mqtttest-pub").
		SetAutoReconnect(false).SetConnectTimeout(2 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	for _, p := range payloads {
		if tok := c.Publish(topic, 1, false, p); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
}

func TestBrokerSubscribePublish(t *testing.T) {
	b := Start(t)
	if !strings.HasPrefix(b.URL(), "tcp://127.0.0.1:") {
		t.Fatalf("URL = %q", b.URL())
	}
	col := b.Subscribe(t, "test/#")
	publish(t, b.URL(), "test/a", "one", "two", "three")
	got := col.WaitN(3, 5*time.Second)
	if len(got) != 3 {
		t.Fatalf("got %d messages, want 3", len(got))
	}
	for i, want := range []string{"one", "two", "three"} {
		if got[i].Topic != "test/a" || string(got[i].Payload) != want {
			t.Errorf("message %d = %s %q, want test/a %q", i, got[i].Topic, got[i].Payload, want)
		}
	}
}

func TestBrokerRestartSamePort(t *testing.T) {
	b := Start(t)
	url := b.URL()
	col := b.Subscribe(t, "r/#")
	b.Stop()
	if b.Running() {
		t.Fatal("Running after Stop")
	}
	b.Stop() // idempotent
	b.Start()
	if b.URL() != url {
		t.Fatalf("URL changed across restart: %s -> %s", url, b.URL())
	}
	if !col.WaitSubscribes(2, 5*time.Second) {
		t.Fatalf("collector did not resubscribe; broker output:\n%s", b.Output())
	}
	publish(t, b.URL(), "r/x", "after")
	if got := col.WaitN(1, 5*time.Second); len(got) != 1 || string(got[0].Payload) != "after" {
		t.Fatalf("after restart got %v", got)
	}
	b.Restart()
	if !col.WaitSubscribes(3, 5*time.Second) {
		t.Fatal("collector did not resubscribe after Restart")
	}
}

func TestWaitNTimeout(t *testing.T) {
	b := Start(t)
	col := b.Subscribe(t, "none")
	start := time.Now()
	if got := col.WaitN(1, 50*time.Millisecond); len(got) != 0 {
		t.Fatalf("got %v", got)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("WaitN returned before its timeout")
	}
}

// stop is the panic value a fakeTB uses to end the "test" like runtime.Goexit would.
type stop struct{}

type fakeTB struct {
	testing.TB
	skipped, fatal string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Skipf(format string, a ...any)  { f.skipped = fmt.Sprintf(format, a...); panic(stop{}) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.fatal = fmt.Sprintf(format, a...); panic(stop{}) }

func TestMissingMosquitto(t *testing.T) {
	old := lookPath
	t.Cleanup(func() { lookPath = old })
	lookPath = func() (string, error) { return "", errors.New("mosquitto not found") }

	tests := []struct {
		name        string
		require     string
		wantSkip    bool
		wantMessage string
	}{
		{name: "skip by default", require: "", wantSkip: true, wantMessage: RequireEnv},
		{name: "fatal when required", require: "1", wantSkip: false, wantMessage: "apt-get install mosquitto"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireEnv, tt.require)
			f := &fakeTB{TB: t}
			func() {
				defer func() {
					if r := recover(); r != nil {
						if _, ok := r.(stop); !ok {
							panic(r)
						}
					}
				}()
				Start(f)
			}()
			msg := f.fatal
			if tt.wantSkip {
				msg = f.skipped
			}
			if msg == "" || !strings.Contains(msg, tt.wantMessage) {
				t.Fatalf("skipped=%q fatal=%q, want %s containing %q", f.skipped, f.fatal, map[bool]string{true: "skip", false: "fatal"}[tt.wantSkip], tt.wantMessage)
			}
		})
	}
}
