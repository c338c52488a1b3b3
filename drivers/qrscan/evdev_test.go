package qrscan

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// keyRecord is one input_event written by hand (not by EncodeKeys), so the decoder is
// checked against the kernel's layout: timeval (two longs), type, code, value.
func keyRecord(word int, typ, code uint16, val int32) []byte {
	b := make([]byte, 2*word+8)
	binary.LittleEndian.PutUint64(b[0:], 0x1234) // seconds, whatever the word size
	binary.LittleEndian.PutUint16(b[2*word:], typ)
	binary.LittleEndian.PutUint16(b[2*word+2:], code)
	binary.LittleEndian.PutUint32(b[2*word+4:], uint32(val))
	return b
}

func TestKeyDecoderLayout(t *testing.T) {
	for _, word := range []int{8, 4} {
		var stream []byte
		for _, r := range [][3]int{{4, 4, 0x70021}, {1, 42, 1}, {1, 35, 1}, {1, 35, 0}, {1, 42, 0}, {0, 0, 0}, {1, 46, 1}, {1, 46, 2}, {1, 46, 0}, {1, 28, 1}} {
			stream = append(stream, keyRecord(word, uint16(r[0]), uint16(r[1]), int32(r[2]))...)
		}
		d := KeyDecoder{WordSize: word}
		// Fed in odd-sized pieces: records split across reads.
		var got []byte
		for i := 0; i < len(stream); i += 7 {
			got = append(got, d.Feed(stream[i:min(i+7, len(stream))])...)
		}
		if string(got) != "Hc\r" {
			t.Errorf("word %d: typed %q, want \"Hc\\r\"", word, got)
		}
	}
}

func TestKeyDecoderRoundTrip(t *testing.T) {
	tests := []struct{ in, want string }{
		{"HC-GREEN-FRESH", "HC-GREEN-FRESH\r"},
		{"hc_1!@#$%^&*()=+[]{};:'\",.<>/?\\|`~ x", "hc_1!@#$%^&*()=+[]{};:'\",.<>/?\\|`~ x\r"},
		{"A\tB", "A\x00B\r"}, // no key for TAB in the table: typed as garbage
	}
	for _, tt := range tests {
		for _, word := range []int{8, 4} {
			d := KeyDecoder{WordSize: word}
			if got := string(d.Feed(EncodeKeys(tt.in, word))); got != tt.want {
				t.Errorf("word %d: %q typed %q, want %q", word, tt.in, got, tt.want)
			}
		}
	}
	// Caps lock inverts letters only.
	d := KeyDecoder{WordSize: 8}
	var s []byte
	s = append(s, keyRecord(8, 1, keyCapsLock, 1)...)
	s = append(s, keyRecord(8, 1, keyCapsLock, 0)...)
	s = append(s, EncodeKeys("aB1", 8)...)
	if got := string(d.Feed(s)); got != "Ab1\r" {
		t.Errorf("caps lock: typed %q, want \"Ab1\\r\"", got)
	}
}

func TestDedup(t *testing.T) {
	t0 := time.Unix(1000, 0)
	d := Dedup{Window: 2 * time.Second}
	steps := []struct {
		tok  string
		at   time.Duration
		want bool
	}{
		{"A", 0, true},
		{"A", time.Second, false},             // held in front of the scanner
		{"A", 2500 * time.Millisecond, false}, // still held: the window restarts with each repeat
		{"B", 2600 * time.Millisecond, true},
		{"A", 2700 * time.Millisecond, true}, // a different code came between
		{"A", 5 * time.Second, true},         // after the window
	}
	for i, s := range steps {
		if got := d.Allow(s.tok, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d: Allow=%v, want %v", i, got, s.want)
		}
	}
	off := Dedup{}
	if !off.Allow("A", t0) || !off.Allow("A", t0) {
		t.Error("a zero window suppressed a scan")
	}
}

// pipes hands the driver a fresh pipe on each open, as a scanner plugged in again.
type pipes struct {
	mu   sync.Mutex
	w    *os.File
	open chan *os.File
	gone bool
}

func (p *pipes) openFn(string) (EventDevice, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return nil, os.ErrNotExist
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p.w = w
	p.open <- w
	return r, nil
}

// TestEvdevRecordedStream plays an event stream through the driver: scans, a repeat inside
// the duplicate window, a too-long scan, an unplug and a replug.
func TestEvdevRecordedStream(t *testing.T) {
	oldOpen, oldMin, oldMax := OpenEventDevice, backoffMin, backoffMax
	p := &pipes{open: make(chan *os.File, 4)}
	OpenEventDevice, backoffMin, backoffMax = p.openFn, 10*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() { OpenEventDevice, backoffMin, backoffMax = oldOpen, oldMin, oldMax })

	e := NewEvdev(EvdevConfig{Device: "/dev/input/fake", MaxLength: 32, DuplicateWindow: time.Minute}, nil)
	states := make(chan bool, 16)
	e.OnState(func(on bool, _ error) { states <- on })
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 16)
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, func(s Scan) { got <- s.Token }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	w := <-p.open
	var stream []byte
	for _, s := range []string{"HC-ONE", "HC-ONE", strings.Repeat("X", 40), "HC-TWO"} {
		stream = append(stream, EncodeKeys(s, wordSize)...)
	}
	if _, err := w.Write(stream); err != nil {
		t.Fatal(err)
	}
	want := []string{"HC-ONE", "HC-TWO"}
	for _, tok := range want {
		select {
		case g := <-got:
			if g != tok {
				t.Fatalf("scan %q, want %q", g, tok)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no scan %q within 5s", tok)
		}
	}
	// Unplug: the device's stream ends; the driver reopens it.
	w.Close()
	w2 := <-p.open
	if _, err := w2.Write(EncodeKeys("HC-THREE", wordSize)); err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-got:
		if g != "HC-THREE" {
			t.Fatalf("scan %q after replug, want HC-THREE", g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no scan after replug within 5s")
	}
	var seq []bool
	for len(states) > 0 {
		seq = append(seq, <-states)
	}
	if !reflect.DeepEqual(seq, []bool{true, false, true}) {
		t.Errorf("states %v, want online, offline, online", seq)
	}
	st := e.Stats()
	if st.Scans != 3 || st.Duplicates != 1 || st.Overlong != 1 || st.Reopens != 1 {
		t.Errorf("stats %+v, want 3 scans, 1 duplicate, 1 overlong, 1 reopen", st)
	}
	_ = w2.Close()
}

func TestEvdevMissingDevice(t *testing.T) {
	e := NewEvdev(EvdevConfig{Device: "/nonexistent/event0", MaxLength: 32}, nil)
	if err := e.Open(); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open: %v, want not-exist", err)
	}
}

func FuzzKeyDecoder(f *testing.F) {
	f.Add(EncodeKeys("HC-GREEN-FRESH", 8), 8, 24)
	f.Add(EncodeKeys("a!B", 4), 4, 5)
	f.Add(keyRecord(8, 1, 999, 1), 8, 1)
	f.Fuzz(func(t *testing.T, b []byte, word, chunk int) {
		if word != 4 && word != 8 {
			word = 8
		}
		if chunk < 1 {
			chunk = 1
		}
		d := KeyDecoder{WordSize: word}
		sp := Splitter{Max: 64}
		typed := 0
		for i := 0; i < len(b); i += chunk {
			out := d.Feed(b[i:min(i+chunk, len(b))])
			typed += len(out)
			for _, l := range sp.Feed(out) {
				if len(l) == 0 || len(l) > 64 || strings.ContainsAny(l, "\r\n\x00") {
					t.Fatalf("bad line of length %d", len(l))
				}
			}
		}
		if d.Events != len(b)/(2*word+8) || typed > d.Events {
			t.Fatalf("%d events, %d bytes typed from %d bytes", d.Events, typed, len(b))
		}
	})
}
