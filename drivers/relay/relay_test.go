package relay

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

func level(p *gpiotest.Pin) gpio.Level {
	p.Lock()
	defer p.Unlock()
	return p.L
}

func TestPulse(t *testing.T) {
	for _, activeLow := range []bool{false, true} {
		t.Run(map[bool]string{false: "active high", true: "active low"}[activeLow], func(t *testing.T) {
			on, off := gpio.Level(!activeLow), gpio.Level(activeLow)
			pin := &gpiotest.Pin{N: "GPIO17", L: on} // boot left it energised
			r, err := New(pin, Options{ActiveLow: activeLow})
			if err != nil {
				t.Fatal(err)
			}
			if level(pin) != off {
				t.Fatal("relay not de-energised at start")
			}
			if err := r.Pulse(context.Background(), 50*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if level(pin) != on {
				t.Fatal("relay not energised by Pulse")
			}
			waitLevel(t, pin, off, 2*time.Second)
			if err := r.Pulse(context.Background(), time.Hour); !errors.Is(err, ErrMaxPulse) {
				t.Fatalf("hour-long pulse: err %v, want ErrMaxPulse", err)
			}
			if level(pin) != off {
				t.Fatal("refused pulse left the relay energised")
			}
			if err := r.Pulse(context.Background(), time.Second); err != nil {
				t.Fatal(err)
			}
			if err := r.Halt(); err != nil {
				t.Fatal(err)
			}
			if level(pin) != off {
				t.Fatal("Halt left the relay energised")
			}
			if err := r.Pulse(context.Background(), time.Millisecond); !errors.Is(err, ErrHalted) {
				t.Fatalf("pulse after Halt: %v", err)
			}
		})
	}
}

func TestLookupMissing(t *testing.T) {
	if _, err := Lookup("GPIO_NOPE_999"); !errors.Is(err, ErrNoPin) {
		t.Fatalf("err %v, want ErrNoPin", err)
	}
}

func waitLevel(t *testing.T, p *gpiotest.Pin, want gpio.Level, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for level(p) != want {
		if time.Now().After(deadline) {
			t.Fatalf("pin not %s within %s", want, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHold: a Hold outlasts pulses and EndPulse, Release drops the relay, Halt ends a Hold.
func TestHold(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO22"}
	r, err := New(pin, Options{ActiveLow: true})
	if err != nil {
		t.Fatal(err)
	}
	on, off := gpio.Low, gpio.High
	if err := r.Pulse(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := r.Hold(); err != nil {
		t.Fatal(err)
	}
	if level(pin) != on || !r.Held() {
		t.Fatal("Hold did not energise the relay")
	}
	if err := r.Pulse(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := r.EndPulse(); err != nil {
		t.Fatal(err)
	}
	// Let both short pulses run out: the Hold must keep the relay energised.
	done := make(chan struct{})
	time.AfterFunc(20*time.Millisecond, func() { close(done) })
	<-done
	if level(pin) != on {
		t.Fatal("a pulse ending dropped a Hold")
	}
	// A second Hold (always-open mode during a fire alarm) needs its own Release.
	if err := r.Hold(); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(); err != nil {
		t.Fatal(err)
	}
	if level(pin) != on || !r.Held() {
		t.Fatal("one Release dropped two Holds")
	}
	if err := r.Release(); err != nil {
		t.Fatal(err)
	}
	if level(pin) != off || r.Held() {
		t.Fatal("Release left the relay energised")
	}
	if err := r.Release(); err != nil || level(pin) != off {
		t.Fatal("a Release without a Hold failed or energised the relay")
	}

	// A pulse running at Release ends on its own.
	if err := r.Pulse(context.Background(), 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	_ = r.Hold()
	_ = r.Release()
	if level(pin) != on {
		t.Fatal("Release cut a running pulse")
	}
	waitLevel(t, pin, off, 2*time.Second)

	// EndPulse cuts a pulse short.
	if err := r.Pulse(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r.EndPulse(); err != nil {
		t.Fatal(err)
	}
	if level(pin) != off {
		t.Fatal("EndPulse left the relay energised")
	}

	_ = r.Hold()
	if err := r.Halt(); err != nil {
		t.Fatal(err)
	}
	if level(pin) != off || r.Held() {
		t.Fatal("Halt left a Hold in force")
	}
	if err := r.Hold(); !errors.Is(err, ErrHalted) {
		t.Fatalf("Hold after Halt: %v, want ErrHalted", err)
	}
}

// flakyPin refuses the low level a few times, like a gpiochip ioctl failing transiently.
type flakyPin struct {
	gpiotest.Pin
	mu       sync.Mutex
	failLows int
}

func (p *flakyPin) Out(l gpio.Level) error {
	p.mu.Lock()
	if l == gpio.Low && p.failLows > 0 {
		p.failLows--
		p.mu.Unlock()
		return errors.New("EIO")
	}
	p.mu.Unlock()
	return p.Pin.Out(l)
}

// A pulse whose end fails to de-energise the line is retried until the relay is off.
func TestPulseEndRetriesDeEnergise(t *testing.T) {
	old := releaseRetry
	releaseRetry = 5 * time.Millisecond
	t.Cleanup(func() { releaseRetry = old })
	pin := &flakyPin{Pin: gpiotest.Pin{N: "GPIO17"}}
	r, err := New(pin, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pin.mu.Lock()
	pin.failLows = 3
	pin.mu.Unlock()
	if err := r.Pulse(context.Background(), 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitLevel(t, &pin.Pin, gpio.Low, 2*time.Second)
	if r.Faults() != 3 {
		t.Errorf("faults = %d, want 3", r.Faults())
	}
}
