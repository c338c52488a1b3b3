package config

import (
	"net/url"
	"slices"
	"time"
)

// Defaults and bounds of the device keys (drivers issue).
const (
	DefaultIDCardBaud = 115200
	// DefaultDuplicateWindow is off: the device styles' configs set one (2s suggested).
	DefaultDuplicateWindow = 0
	maxDuplicateWindow     = time.Minute
	DefaultBarrierMode     = "pulse"
	DefaultMaxPulse        = 10 * time.Second
	maxMaxPulse            = time.Minute
	DefaultDebounce        = 30 * time.Millisecond
	maxDebounce            = time.Second
	// maxFireDebounce keeps the fire alarm's release within its 100 ms budget.
	maxFireDebounce   = 50 * time.Millisecond
	DefaultHeldOpen   = 30 * time.Second
	DefaultCameraWait = 2 * time.Second
)

// IDCardReader is a second-generation ID-card reader (SAM module) on a serial line.
type IDCardReader struct {
	Driver string `yaml:"driver"` // sam
	Port   string `yaml:"port"`
	Baud   int    `yaml:"baud"`
}

// Camera captures stills for face verification.
type Camera struct {
	Driver  string        `yaml:"driver"` // v4l2 | http | none
	Device  string        `yaml:"device"` // v4l2: /dev/video0
	URL     string        `yaml:"url"`    // http: the snapshot URL (may hold credentials)
	Timeout time.Duration `yaml:"timeout"`
}

// Inputs are the lane's GPIO inputs; an absent one is not wired.
type Inputs struct {
	ExitButton *Input `yaml:"exit_button"`
	DoorSensor *Input `yaml:"door_sensor"`
	FireAlarm  *Input `yaml:"fire_alarm"`
	Tamper     *Input `yaml:"tamper"`
}

// Input is one debounced GPIO input.
type Input struct {
	Pin       string        `yaml:"pin"`
	ActiveLow bool          `yaml:"active_low"`
	Debounce  time.Duration `yaml:"debounce"`
	// HeldOpen (door_sensor only) is how long the door may stay open before the held-open
	// alarm.
	HeldOpen time.Duration `yaml:"held_open"`
}

// Named lists the configured inputs by their key.
func (in Inputs) Named() map[string]*Input {
	m := map[string]*Input{}
	for k, v := range map[string]*Input{"exit_button": in.ExitButton, "door_sensor": in.DoorSensor, "fire_alarm": in.FireAlarm, "tamper": in.Tamper} {
		if v != nil {
			m[k] = v
		}
	}
	return m
}

func init() { registerSection(devicesDefaults, devicesValidate) }

func devicesDefaults(c *Config, present func(string) bool) {
	if q := c.Scanners.QR; q != nil && !present("scanners.qr.duplicate_window") {
		q.DuplicateWindow = DefaultDuplicateWindow
	}
	if r := c.Scanners.IDCard; r != nil && r.Baud == 0 {
		r.Baud = DefaultIDCardBaud
	}
	if c.Barrier.Mode == "" {
		c.Barrier.Mode = DefaultBarrierMode
	}
	if c.Barrier.MaxPulse == 0 {
		c.Barrier.MaxPulse = DefaultMaxPulse
	}
	if cam := c.Camera; cam != nil && cam.Timeout == 0 {
		cam.Timeout = DefaultCameraWait
	}
	for name, in := range c.Inputs.Named() {
		if !present("inputs." + name + ".debounce") {
			in.Debounce = DefaultDebounce
		}
		if name == "door_sensor" && in.HeldOpen == 0 {
			in.HeldOpen = DefaultHeldOpen
		}
	}
}

func devicesValidate(c *Config) []Problem {
	var ps []Problem
	add := func(key, format string, args ...any) { ps = append(ps, Problemf(key, format, args...)) }

	if q := c.Scanners.QR; q != nil {
		if q.Driver == "evdev" && q.Device == "" {
			add("scanners.qr.device", "is required for driver evdev (e.g. /dev/input/by-id/usb-...-event-kbd)")
		}
		if q.Driver == "serial" && q.Device != "" {
			add("scanners.qr.device", "is for driver evdev; a serial scanner uses scanners.qr.port")
		}
		if q.DuplicateWindow < 0 || q.DuplicateWindow > maxDuplicateWindow {
			add("scanners.qr.duplicate_window", "must be between 0s (off) and %s, got %s", maxDuplicateWindow, q.DuplicateWindow)
		}
	}
	if r := c.Scanners.IDCard; r != nil {
		if r.Driver != "sam" {
			add("scanners.idcard.driver", "must be one of sam, got %q", r.Driver)
		}
		if r.Port == "" {
			add("scanners.idcard.port", "is required (the reader's serial device, e.g. /dev/ttyUSB1)")
		}
		if r.Baud < 1 || r.Baud > 4_000_000 {
			add("scanners.idcard.baud", "must be between 1 and 4000000, got %d", r.Baud)
		}
		if q := c.Scanners.QR; q != nil && q.Driver == "serial" && q.Port == r.Port && r.Port != "" {
			add("scanners.idcard.port", "is the QR scanner's port too (%s)", r.Port)
		}
	}

	b := c.Barrier
	if !slices.Contains([]string{"pulse", "hold"}, b.Mode) {
		add("barrier.mode", "must be one of pulse, hold, got %q", b.Mode)
	}
	if b.MaxPulse <= 0 || b.MaxPulse > maxMaxPulse {
		add("barrier.max_pulse", "must be > 0 and at most %s, got %s", maxMaxPulse, b.MaxPulse)
	} else if b.Pulse > b.MaxPulse {
		add("barrier.pulse", "must be at most barrier.max_pulse (%s), got %s", b.MaxPulse, b.Pulse)
	}
	if b.Mode == "hold" && c.Inputs.DoorSensor == nil && c.HasBarrier() {
		add("barrier.mode", "hold needs inputs.door_sensor (the relay is released when the person has passed)")
	}

	if cam := c.Camera; cam != nil {
		switch cam.Driver {
		case "v4l2":
			if cam.Device == "" {
				add("camera.device", "is required for driver v4l2 (e.g. /dev/video0)")
			}
		case "http":
			if u, err := url.Parse(cam.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add("camera.url", "must be an http:// or https:// snapshot URL with a host")
			}
		case "none":
		default:
			add("camera.driver", "must be one of v4l2, http, none, got %q", cam.Driver)
		}
		if cam.Timeout < 0 || cam.Timeout > 30*time.Second {
			add("camera.timeout", "must be > 0 and at most 30s, got %s", cam.Timeout)
		}
	}

	pins := map[string]string{}
	if b.Driver == "gpio" && b.Pin != "" {
		pins[b.Pin] = "barrier.pin"
	}
	for _, name := range []string{"exit_button", "door_sensor", "fire_alarm", "tamper"} {
		in := c.Inputs.Named()[name]
		if in == nil {
			continue
		}
		key := "inputs." + name
		if in.Pin == "" {
			add(key+".pin", "is required (a GPIO line name, e.g. GPIO5)")
		} else if other, dup := pins[in.Pin]; dup {
			add(key+".pin", "%s is already used by %s", in.Pin, other)
		} else {
			pins[in.Pin] = key + ".pin"
		}
		limit := maxDebounce
		if name == "fire_alarm" {
			limit = maxFireDebounce // the release must come within 100 ms
		}
		if in.Debounce < 0 || in.Debounce > limit {
			add(key+".debounce", "must be between 0s and %s, got %s", limit, in.Debounce)
		}
		if name != "door_sensor" && in.HeldOpen != 0 {
			add(key+".held_open", "is only for inputs.door_sensor")
		}
		if name == "door_sensor" && (in.HeldOpen <= 0 || in.HeldOpen > time.Hour) {
			add(key+".held_open", "must be > 0 and at most 1h, got %s", in.HeldOpen)
		}
	}
	if c.Inputs.ExitButton != nil && !c.HasBarrier() && slices.Contains(Styles, c.Device.Style) {
		add("inputs.exit_button", "style %s has no barrier for the exit button to open", c.Device.Style)
	}
	return ps
}
