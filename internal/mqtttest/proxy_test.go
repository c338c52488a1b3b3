package mqtttest

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// connectPacket is an MQTT 3.1.1 CONNECT with client id id.
func connectPacket(id string) []byte {
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, byte(len(id))}
	body = append(body, id...)
	return append([]byte{0x10, byte(len(body))}, body...)
}

// echoServer echoes what it reads; it stands in for a broker.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return l.Addr().String()
}

func TestProxy(t *testing.T) {
	p := StartProxy(t, echoServer(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pkt := connectPacket("sentinel-v-d1")
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(pkt))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != string(pkt) {
		t.Fatalf("echo through the proxy: %q, %v", got, err)
	}
	if cs := p.Conns(); len(cs) != 1 || cs[0].ClientID != "sentinel-v-d1" || !cs[0].Upstream {
		t.Fatalf("Conns = %+v", cs)
	}

	const delay = 300 * time.Millisecond
	p.SetDelay(delay)
	start := time.Now()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, got[:1]); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < delay {
		t.Fatalf("a delayed byte came back after %v, want at least %v", took, delay)
	}
	p.SetDelay(0)

	p.Drop() // the connection ends; the proxy still listens
	if _, err := io.ReadFull(c, got[:1]); err == nil {
		t.Fatal("read after Drop succeeded")
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("dial after Drop: %v", err)
	}
	c2.Close()

	p.Stop() // refused, as a stopped broker
	if c3, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c3.Close()
		t.Fatal("dial after Stop succeeded")
	} else if !strings.Contains(err.Error(), "refused") {
		t.Fatalf("dial after Stop: %v, want refused", err)
	}
	p.Start()
	c4, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("dial after Start: %v", err)
	}
	c4.Close()
}

func TestSilent(t *testing.T) {
	s := StartSilent(t)
	c, err := net.Dial("tcp", strings.TrimPrefix(s.URL(), "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(connectPacket("x")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("the silent listener answered: %d bytes, %v", n, err)
	}
	if s.Accepted() != 1 {
		t.Fatalf("Accepted = %d", s.Accepted())
	}
}

func TestConnectClientID(t *testing.T) {
	if id := connectClientID(connectPacket("abc")[2:]); id != "abc" {
		t.Fatalf("client id %q", id)
	}
	for _, bad := range [][]byte{nil, {0}, {0, 9, 'M'}, {0, 4, 'M', 'Q', 'T', 'T', 4}} {
		if id := connectClientID(bad); id != "" {
			t.Errorf("connectClientID(%v) = %q", bad, id)
		}
	}
}
