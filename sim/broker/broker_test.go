package broker

import (
	"context"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// connect connects an MQTT 3.1.1 client; lost is closed when the broker
// drops the connection.
func connect(t *testing.T, addr, id string) (c paho.Client, lost <-chan struct{}) {
	t.Helper()
	lostc := make(chan struct{})
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetProtocolVersion(4).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false).
		SetConnectionLostHandler(func(paho.Client, error) { close(lostc) })
	c = paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, lostc
}

func TestPublishSubscribe(t *testing.T) {
	b, err := New("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	if addr == "127.0.0.1:0" {
		t.Fatalf("Addr() = %q, want the real port", addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()

	sub, subLost := connect(t, addr, "sub")
	got := make(chan paho.Message, 4)
	if tok := sub.Subscribe("sentinel/+/passage", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	pub, _ := connect(t, addr, "pub")
	for qos := byte(0); qos <= 1; qos++ {
		if tok := pub.Publish("sentinel/unit-1/passage", qos, false, []byte(`{"n":1}`)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish qos %d: %v", qos, tok.Error())
		}
		select {
		case m := <-got:
			if m.Topic() != "sentinel/unit-1/passage" || string(m.Payload()) != `{"n":1}` {
				t.Errorf("qos %d: got topic %q payload %q", qos, m.Topic(), m.Payload())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("qos %d: message not delivered", qos)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	// The broker disconnects clients on the way out.
	select {
	case <-subLost:
	case <-time.After(5 * time.Second):
		t.Error("subscriber still connected after the broker stopped")
	}
}

func TestNewBadAddress(t *testing.T) {
	if _, err := New("127.0.0.1:notaport", Options{}); err == nil {
		t.Fatal("New on a bad address succeeded")
	}
}
