package mqtttest

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy on a loopback port in front of a broker, for fault tests. It can
// delay what the broker sends to the clients (a slow node: PUBACKs late), it records every
// connection it accepts with the MQTT client id read from the CONNECT packet and the time,
// and it can stop listening (clients are refused, as by a stopped broker) and listen again
// on the same port.
type Proxy struct {
	t        testing.TB
	upstream string
	port     int

	mu     sync.Mutex
	ln     net.Listener
	delay  time.Duration
	conns  map[net.Conn]struct{}
	record []Conn
	wg     sync.WaitGroup
}

// Conn is one connection a Proxy accepted.
type Conn struct {
	At       time.Time // accepted
	ClientID string    // from the CONNECT packet; "" if none arrived
	Upstream bool      // the broker behind the proxy accepted the TCP connection
}

// StartProxy listens on a free loopback port and forwards every connection to upstream
// (host:port). t.Cleanup closes it.
func StartProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mqtttest: proxy listen: %v", err)
	}
	p := &Proxy{t: t, upstream: upstream, port: ln.Addr().(*net.TCPAddr).Port, conns: make(map[net.Conn]struct{})}
	p.serve(ln)
	t.Cleanup(p.Close)
	return p
}

// URL returns "tcp://127.0.0.1:PORT" of the proxy.
func (p *Proxy) URL() string { return "tcp://" + p.Addr() }

// Addr returns the proxy's host:port.
func (p *Proxy) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// SetDelay delays every byte the broker sends from now on by d before it reaches the client
// (0: none). Bytes already waiting keep their delay.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Conns returns the connections accepted so far, in order.
func (p *Proxy) Conns() []Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Conn(nil), p.record...)
}

// Drop closes every open connection and goes on listening: the clients see their connection
// lost and can connect again at once.
func (p *Proxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// Stop closes the listener (new clients are refused) and every open connection.
func (p *Proxy) Stop() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
}

// Start listens again on the same port after Stop; it fails the test if the port cannot be
// had within StartTimeout.
func (p *Proxy) Start() {
	p.t.Helper()
	deadline := time.Now().Add(StartTimeout)
	for {
		ln, err := net.Listen("tcp", p.Addr())
		if err == nil {
			p.serve(ln)
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("mqtttest: proxy listen again on %s: %v", p.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close stops the proxy and waits for its goroutines.
func (p *Proxy) Close() {
	p.Stop()
	p.wg.Wait()
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.handle(c)
			}()
		}
	}()
}

// track adds or removes an open connection; it reports false if the proxy was stopped.
func (p *Proxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !add {
		delete(p.conns, c)
		return true
	}
	if p.ln == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) handle(client net.Conn) {
	at := time.Now()
	if !p.track(client, true) {
		_ = client.Close()
		return
	}
	defer p.track(client, false)
	defer client.Close()
	_ = client.SetReadDeadline(time.Now().Add(StartTimeout))
	first, id, _ := readPacket(client)
	_ = client.SetReadDeadline(time.Time{})
	up, err := net.DialTimeout("tcp", p.upstream, StartTimeout)
	p.mu.Lock()
	p.record = append(p.record, Conn{At: at, ClientID: id, Upstream: err == nil})
	p.mu.Unlock()
	if err != nil {
		return
	}
	if !p.track(up, true) {
		_ = up.Close()
		return
	}
	defer p.track(up, false)
	defer up.Close()
	if _, err := up.Write(first); err != nil {
		return
	}
	quit := make(chan struct{}) // closed when the client side ends
	done := make(chan struct{})
	go func() { _, _ = io.Copy(up, client); _ = up.Close(); close(quit) }()
	go func() { p.delayedCopy(client, up, quit); _ = client.Close(); close(done) }()
	<-quit
	<-done
}

// delayedCopy copies src to dst, holding each chunk for the delay in force when it was read,
// until src ends or quit is closed.
func (p *Proxy) delayedCopy(dst io.Writer, src io.Reader, quit <-chan struct{}) {
	type chunk struct {
		b   []byte
		due time.Time
	}
	ch := make(chan chunk, 1024)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				p.mu.Lock()
				d := p.delay
				p.mu.Unlock()
				ch <- chunk{buf[:n], time.Now().Add(d)}
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		for range ch { // let the reader finish (src is closed when the client side ends)
		}
	}()
	for c := range ch {
		if d := time.Until(c.due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-quit:
				t.Stop()
				return
			}
		}
		if _, err := dst.Write(c.b); err != nil {
			return
		}
	}
}

// readPacket reads one MQTT control packet (the client's first, CONNECT) and returns its
// bytes and, for a CONNECT, the client id.
func readPacket(r io.Reader) ([]byte, string, error) {
	var hdr [1]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, "", err
	}
	raw := []byte{hdr[0]}
	length, mult := 0, 1
	for i := 0; ; i++ {
		var b [1]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return raw, "", err
		}
		raw = append(raw, b[0])
		length += int(b[0]&0x7f) * mult
		mult *= 128
		if b[0]&0x80 == 0 {
			break
		}
		if i == 3 {
			return raw, "", errors.New("mqtttest: bad remaining length")
		}
	}
	if length > 1<<16 {
		return raw, "", errors.New("mqtttest: first packet too large")
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return raw, "", err
	}
	raw = append(raw, body...)
	if hdr[0]>>4 != 1 {
		return raw, "", nil // not CONNECT
	}
	return raw, connectClientID(body), nil
}

// connectClientID returns the client id of a CONNECT packet's variable header and payload.
func connectClientID(body []byte) string {
	str := func(b []byte) (string, []byte, bool) {
		if len(b) < 2 {
			return "", nil, false
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return "", nil, false
		}
		return string(b[2 : 2+n]), b[2+n:], true
	}
	_, rest, ok := str(body) // protocol name
	if !ok || len(rest) < 4 {
		return ""
	}
	id, _, ok := str(rest[4:]) // after level, flags, keepalive
	if !ok {
		return ""
	}
	return id
}

// Silent is a TCP listener on a loopback port that accepts connections and reads what they
// send, but never answers: a broker node that accepts and then hangs.
type Silent struct {
	ln       net.Listener
	mu       sync.Mutex
	accepted int
	conns    []net.Conn
	wg       sync.WaitGroup
}

// StartSilent starts a Silent listener; t.Cleanup closes it.
func StartSilent(t testing.TB) *Silent {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mqtttest: silent listen: %v", err)
	}
	s := &Silent{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.accepted++
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() { defer s.wg.Done(); _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

// URL returns "tcp://127.0.0.1:PORT" of the listener.
func (s *Silent) URL() string { return "tcp://" + s.ln.Addr().String() }

// Accepted returns how many connections it accepted.
func (s *Silent) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Close stops listening and closes the connections.
func (s *Silent) Close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
