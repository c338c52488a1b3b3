package inputs

import (
	"context"
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

func start(t *testing.T, pin *gpiotest.Pin, opt Options) (*Input, <-chan Change) {
	t.Helper()
	in, err := New("fire_alarm", pin, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan Change, 16)
	done := make(chan struct{})
	go func() { defer close(done); _ = in.Run(ctx, func(c Change) { ch <- c }) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = in.Halt()
	})
	return in, ch
}

func next(t *testing.T, ch <-chan Change) Change {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no change within 5s")
		return Change{}
	}
}

func TestDebouncedChanges(t *testing.T) {
	for _, activeLow := range []bool{false, true} {
		t.Run(map[bool]string{false: "active high", true: "active low"}[activeLow], func(t *testing.T) {
			act, idle := gpio.Level(!activeLow), gpio.Level(activeLow)
			pin := &gpiotest.Pin{N: "GPIO5", L: idle, EdgesChan: make(chan gpio.Level, 64)}
			in, ch := start(t, pin, Options{ActiveLow: activeLow, Debounce: 20 * time.Millisecond})
			if c := next(t, ch); !c.Initial || c.Active {
				t.Fatalf("first report %+v, want the initial inactive state", c)
			}
			// A bouncing contact: five edges that end active give one change.
			for _, l := range []gpio.Level{act, idle, act, idle, act} {
				pin.EdgesChan <- l
			}
			if c := next(t, ch); c.Initial || !c.Active {
				t.Fatalf("after bounce: %+v, want active", c)
			}
			if !in.Active() {
				t.Fatal("Active() false after an active change")
			}
			// A glitch that returns to active within the debounce changes nothing; the
			// release after it is one change.
			pin.EdgesChan <- idle
			pin.EdgesChan <- act
			pin.EdgesChan <- idle
			if c := next(t, ch); c.Active {
				t.Fatalf("after release: %+v, want inactive", c)
			}
			if st := in.Stats(); st.Changes != 2 || st.Edges != 8 {
				t.Errorf("stats %+v, want 2 changes, 8 edges", st)
			}
		})
	}
}

// TestActiveAtStart: a fire alarm already active when the agent starts is reported at once.
func TestActiveAtStart(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO6", L: gpio.Low, EdgesChan: make(chan gpio.Level, 4)}
	_, ch := start(t, pin, Options{ActiveLow: true, Debounce: 10 * time.Millisecond})
	if c := next(t, ch); !c.Initial || !c.Active {
		t.Fatalf("first report %+v, want initial active", c)
	}
}

// TestMissedEdge: a level change without an edge (the kernel lost it) is still seen.
func TestMissedEdge(t *testing.T) {
	old := pollEvery
	pollEvery = 5 * time.Millisecond
	t.Cleanup(func() { pollEvery = old })
	pin := &gpiotest.Pin{N: "GPIO7", EdgesChan: make(chan gpio.Level, 4)}
	_, ch := start(t, pin, Options{Debounce: 5 * time.Millisecond})
	next(t, ch)
	pin.Lock()
	pin.L = gpio.High
	pin.Unlock()
	if c := next(t, ch); !c.Active {
		t.Fatalf("%+v, want active", c)
	}
}

func TestChatterBurstCounted(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO8", EdgesChan: make(chan gpio.Level, 64)}
	in, ch := start(t, pin, Options{Debounce: 20 * time.Millisecond})
	next(t, ch)
	for i := 0; i < 41; i++ {
		pin.EdgesChan <- gpio.Level(i%2 == 0)
	}
	if c := next(t, ch); !c.Active {
		t.Fatalf("%+v, want active", c)
	}
	if st := in.Stats(); st.Bursts != 1 || st.Changes != 1 {
		t.Errorf("stats %+v, want 1 burst, 1 change", st)
	}
}

func TestNoEdgeSupport(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO9"} // no EdgesChan: gpiotest refuses edge detection
	if _, err := New("tamper", pin, Options{}, nil); err == nil {
		t.Fatal("New succeeded on a pin without edge detection")
	}
}

func TestLookupMissing(t *testing.T) {
	if _, err := Lookup("GPIO_NOPE_999"); !errors.Is(err, ErrNoPin) {
		t.Fatalf("err %v, want ErrNoPin", err)
	}
}
