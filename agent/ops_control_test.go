package agent

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// subToken is a finished SUBACK with a result, like paho's SubscribeToken.
type subToken struct {
	err    error
	result map[string]byte
}

func (t subToken) Wait() bool                     { return true }
func (t subToken) WaitTimeout(time.Duration) bool { return true }
func (t subToken) Done() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
func (t subToken) Error() error            { return t.err }
func (t subToken) Result() map[string]byte { return t.result }

func grantedToken(filter string, rc byte) mqtt.Token {
	return subToken{result: map[string]byte{filter: rc}}
}
func failedToken(err error) mqtt.Token { return subToken{err: err} }

// subClient is an mqtt.Client whose Subscribe answers from a script.
type subClient struct {
	mqtt.Client // the rest is not used
	mu          sync.Mutex
	answers     []func(filter string) mqtt.Token
	calls       int
}

func (c *subClient) Subscribe(filter string, _ byte, _ mqtt.MessageHandler) mqtt.Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.answers[min(c.calls, len(c.answers)-1)]
	c.calls++
	return a(filter)
}
func (c *subClient) IsConnectionOpen() bool { return true }

// TestCommandSubscription: a subscription the broker refuses (SUBACK 0x80, which paho does
// not report as an error) or that fails is not taken for granted: it is counted as not
// subscribed and tried again until the broker grants it.
func TestCommandSubscription(t *testing.T) {
	sr := subscribeRetry
	subscribeRetry = time.Millisecond
	t.Cleanup(func() { subscribeRetry = sr })
	_, priv, _ := ed25519.GenerateKey(nil)
	f := newCmdFixture(t, t.TempDir(), priv)
	c := &control{d: f.d, st: f.st, cmds: f.c, stopped: make(chan struct{})}
	filter := Topic(f.d.Cfg, "cmd") + "/+"

	if err := subscribe(&subClient{answers: []func(string) mqtt.Token{func(f string) mqtt.Token { return grantedToken(f, 0x80) }}}, filter, nil); err == nil ||
		!strings.Contains(err.Error(), "refused by the broker") {
		t.Errorf("a refused SUBACK: %v", err)
	}
	cl := &subClient{answers: []func(string) mqtt.Token{
		func(f string) mqtt.Token { return grantedToken(f, 0x80) },
		func(string) mqtt.Token { return failedToken(errors.New("not connected")) },
		func(f string) mqtt.Token { return grantedToken(f, 1) },
	}}
	done := make(chan bool, 1)
	go func() { done <- c.subscribeCommands(cl, filter) }()
	select {
	case ok := <-done:
		if !ok || cl.calls != 3 {
			t.Errorf("subscribed=%v after %d attempts, want true after 3", ok, cl.calls)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("never subscribed")
	}
	if v := counterValue(t, f.st, "sentinel_commands_subscribed", nil); v != 1 {
		t.Errorf("sentinel_commands_subscribed %v, want 1", v)
	}

	// Refused for good: the loop ends when the control connection stops.
	never := &subClient{answers: []func(string) mqtt.Token{func(f string) mqtt.Token { return grantedToken(f, 0x80) }}}
	go func() { done <- c.subscribeCommands(never, filter) }()
	deadline := time.Now().Add(5 * time.Second)
	for counterValue(t, f.st, "sentinel_commands_subscribed", nil) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a refused subscription still counts as subscribed")
		}
		time.Sleep(time.Millisecond)
	}
	close(c.stopped)
	select {
	case ok := <-done:
		if ok {
			t.Error("a refused subscription reported success")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the retry loop outlived the control connection")
	}
}
