package agent

import (
	"os"
	"path/filepath"
	"testing"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/sentinel-edge/sentinel/agent/open"
)

// relay-off de-energises the relay from the barrier section alone, even when the rest of the
// config is one the daemon refuses.
func TestRelayOff(t *testing.T) {
	for _, activeLow := range []bool{false, true} {
		pin := &gpiotest.Pin{N: "GPIO17", L: gpio.Level(!activeLow)} // left energised by a crash
		old := open.LookupRelayPin
		open.LookupRelayPin = func(string) (gpio.PinIO, error) { return pin, nil }
		t.Cleanup(func() { open.LookupRelayPin = old })
		path := filepath.Join(t.TempDir(), "c.yaml")
		body := "device: {id: \"not/valid\"}\nbogus_key: 1\nbarrier: {driver: gpio, pin: GPIO17, active_low: " +
			map[bool]string{false: "false", true: "true"}[activeLow] + "}\n"
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		had, err := RelayOff(path)
		if err != nil || !had {
			t.Fatalf("RelayOff = %v, %v", had, err)
		}
		pin.Lock()
		l := pin.L
		pin.Unlock()
		if l != gpio.Level(activeLow) {
			t.Errorf("active_low=%v: line left at %v, want de-energised", activeLow, l)
		}
	}
	path := filepath.Join(t.TempDir(), "none.yaml")
	if err := os.WriteFile(path, []byte("barrier: {driver: none}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if had, err := RelayOff(path); had || err != nil {
		t.Errorf("no barrier: RelayOff = %v, %v", had, err)
	}
	if _, err := RelayOff(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing config gave no error")
	}
}
