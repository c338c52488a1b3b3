package config

import (
	"net/url"
	"slices"
	"strings"
	"time"
)

// Defaults and bounds of the device keys (drivers issue).
const (
	DefaultIDCardBaud = 115200
	// DefaultIDCardDuplicateWindow is on: the same card laid again within it (or lost and
	// found again by the reader) is one passage.
	DefaultIDCardDuplicateWindow = 2 * time.Second
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
	// DuplicateWindow makes the same card laid again within it one passage; 0s turns it off.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
}

// Camera captures stills for face verification.
type Camera struct {
	Driver  string        `yaml:"driver"` // v4l2 | http | none
	Device  string        `yaml:"device"` // v4l2: /dev/video0
	URL     string        `yaml:"url"`    // http: the snapshot URL (may hold credentials)
	Timeout time.Duration `yaml:"timeout"`
	// Verify says when a snapshot goes to the platform's face verification: never;
	// with_idcard (each ID-card passage is verified by face and ID number, and by the card
	// alone when no snapshot can be taken); required (the same, but no snapshot denies
	// face_unavailable). Default by style: pillar required, gate_all_in_one with_idcard,
	// others never; never without a camera or an ID-card reader, or when the style's
	// policy.credentials leaves out face.
	Verify string `yaml:"verify"`
	// Keep says whether snapshots are kept: none (the default: never stored) or sealed (the
	// face passage's record carries the snapshot inside subject.sealed, sealed to the
	// platform's key; needs privacy.platform_key_file).
	Keep string `yaml:"keep"`
}

// Camera verification modes (camera.verify) and keep modes (camera.keep).
const (
	CameraVerifyNever      = "never"
	CameraVerifyWithIDCard = "with_idcard"
	CameraVerifyRequired   = "required"
	CameraKeepNone         = "none"
	CameraKeepSealed       = "sealed"
)

// CameraVerifyModes lists camera.verify's values.
var CameraVerifyModes = []string{CameraVerifyNever, CameraVerifyWithIDCard, CameraVerifyRequired}

// HasCamera says whether a camera driver is configured (not absent, not none).
func (c *Config) HasCamera() bool {
	return c.Camera != nil && (c.Camera.Driver == "http" || c.Camera.Driver == "v4l2")
}

// FaceVerify is camera.verify in force: never when there is no camera section.
func (c *Config) FaceVerify() string {
	if c.Camera == nil || c.Camera.Verify == "" {
		return CameraVerifyNever
	}
	return c.Camera.Verify
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

func devicesDefaults(c *Config, present func(string) bool) {
	if q := c.Scanners.QR; q != nil && !present("scanners.qr.duplicate_window") {
		q.DuplicateWindow = DefaultDuplicateWindow
	}
	if r := c.Scanners.IDCard; r != nil && r.Baud == 0 {
		r.Baud = DefaultIDCardBaud
	}
	if r := c.Scanners.IDCard; r != nil && !present("scanners.idcard.duplicate_window") {
		r.DuplicateWindow = DefaultIDCardDuplicateWindow
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
	if cam := c.Camera; cam != nil && cam.Verify == "" {
		cam.Verify = CameraVerifyNever
		accepts := c.AcceptedCredentials()
		if c.HasCamera() && c.Scanners.IDCard != nil && (len(accepts) == 0 || slices.Contains(accepts, "face")) {
			switch c.Device.Style {
			case StylePillar:
				cam.Verify = CameraVerifyRequired // face is the pillar's primary credential
			case StyleGateAllInOne:
				cam.Verify = CameraVerifyWithIDCard
			}
		}
	}
	if cam := c.Camera; cam != nil && cam.Keep == "" {
		cam.Keep = CameraKeepNone
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

// devicesValidate checks the device keys, part by part.
func devicesValidate(c *Config) []Problem {
	var ps problems
	for _, step := range []func(*Config, *problems){validateScanners, validateBarrierMode, validateCamera, validateInputs} {
		step(c, &ps)
	}
	return ps
}

func validateScanners(c *Config, ps *problems) {
	if q := c.Scanners.QR; q != nil {
		if q.Driver == "evdev" && q.Device == "" {
			ps.add("scanners.qr.device", "is required for driver evdev (e.g. /dev/input/by-id/usb-...-event-kbd)")
		}
		if q.Driver == "serial" && q.Device != "" {
			ps.add("scanners.qr.device", "is for driver evdev; a serial scanner uses scanners.qr.port")
		}
		if q.DuplicateWindow < 0 || q.DuplicateWindow > maxDuplicateWindow {
			ps.add("scanners.qr.duplicate_window", "must be between 0s (off) and %s, got %s", maxDuplicateWindow, q.DuplicateWindow)
		}
	}
	r := c.Scanners.IDCard
	if r == nil {
		return
	}
	if r.Driver != "sam" {
		ps.add("scanners.idcard.driver", "must be one of sam, got %q", r.Driver)
	}
	if r.Port == "" {
		ps.add("scanners.idcard.port", "is required (the reader's serial device, e.g. /dev/ttyUSB1)")
	}
	if r.Baud < 1 || r.Baud > 4_000_000 {
		ps.add("scanners.idcard.baud", "must be between 1 and 4000000, got %d", r.Baud)
	}
	if q := c.Scanners.QR; q != nil && q.Driver == "serial" && q.Port == r.Port && r.Port != "" {
		ps.add("scanners.idcard.port", "is the QR scanner's port too (%s)", r.Port)
	}
	if r.DuplicateWindow < 0 || r.DuplicateWindow > maxDuplicateWindow {
		ps.add("scanners.idcard.duplicate_window", "must be between 0s (off) and %s, got %s", maxDuplicateWindow, r.DuplicateWindow)
	}
}

func validateBarrierMode(c *Config, ps *problems) {
	b := c.Barrier
	if !slices.Contains([]string{"pulse", "hold"}, b.Mode) {
		ps.add("barrier.mode", "must be one of pulse, hold, got %q", b.Mode)
	}
	if b.MaxPulse <= 0 || b.MaxPulse > maxMaxPulse {
		ps.add("barrier.max_pulse", "must be > 0 and at most %s, got %s", maxMaxPulse, b.MaxPulse)
	} else if b.Pulse > b.MaxPulse {
		ps.add("barrier.pulse", "must be at most barrier.max_pulse (%s), got %s", b.MaxPulse, b.Pulse)
	}
	if b.Mode == "hold" && c.Inputs.DoorSensor == nil && c.HasBarrier() {
		ps.add("barrier.mode", "hold needs inputs.door_sensor (the relay is released when the person has passed)")
	}
}

func validateCamera(c *Config, ps *problems) {
	cam := c.Camera
	if cam == nil {
		return
	}
	switch cam.Driver {
	case "v4l2":
		if cam.Device == "" {
			ps.add("camera.device", "is required for driver v4l2 (e.g. /dev/video0)")
		}
	case "http":
		if u, err := url.Parse(cam.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ps.add("camera.url", "must be an http:// or https:// snapshot URL with a host")
		}
	case "none":
	default:
		ps.add("camera.driver", "must be one of v4l2, http, none, got %q", cam.Driver)
	}
	if cam.Timeout < 0 || cam.Timeout > 30*time.Second {
		ps.add("camera.timeout", "must be > 0 and at most 30s, got %s", cam.Timeout)
	}
	switch {
	case !slices.Contains(CameraVerifyModes, cam.Verify):
		ps.add("camera.verify", "must be one of %s, got %q", strings.Join(CameraVerifyModes, ", "), cam.Verify)
	case cam.Verify != CameraVerifyNever && !c.HasCamera():
		ps.add("camera.verify", "%s needs camera.driver v4l2 or http", cam.Verify)
	case cam.Verify != CameraVerifyNever && c.Scanners.IDCard == nil:
		ps.add("camera.verify", "%s needs scanners.idcard (the face is verified with the card's ID number)", cam.Verify)
	case cam.Verify != CameraVerifyNever && len(c.AcceptedCredentials()) > 0 && !slices.Contains(c.AcceptedCredentials(), "face"):
		ps.add("camera.verify", "%s needs face in policy.credentials.%s", cam.Verify, c.Device.Style)
	}
	switch cam.Keep {
	case CameraKeepNone:
	case CameraKeepSealed:
		if c.Privacy.PlatformKeyFile == "" {
			ps.add("camera.keep", "sealed needs privacy.platform_key_file (snapshots are stored only sealed to the platform's key)")
		}
		if cam.Verify == CameraVerifyNever {
			ps.add("camera.keep", "sealed keeps the snapshots of face verification, but camera.verify is never")
		}
	default:
		ps.add("camera.keep", "must be one of none, sealed, got %q", cam.Keep)
	}
}

func validateInputs(c *Config, ps *problems) {
	pins := map[string]string{}
	if b := c.Barrier; b.Driver == "gpio" && b.Pin != "" {
		pins[b.Pin] = "barrier.pin"
	}
	for _, name := range []string{"exit_button", "door_sensor", "fire_alarm", "tamper"} {
		in := c.Inputs.Named()[name]
		if in == nil {
			continue
		}
		key := "inputs." + name
		if in.Pin == "" {
			ps.add(key+".pin", "is required (a GPIO line name, e.g. GPIO5)")
		} else if other, dup := pins[in.Pin]; dup {
			ps.add(key+".pin", "%s is already used by %s", in.Pin, other)
		} else {
			pins[in.Pin] = key + ".pin"
		}
		limit := maxDebounce
		if name == "fire_alarm" {
			limit = maxFireDebounce // the release must come within 100 ms
		}
		if in.Debounce < 0 || in.Debounce > limit {
			ps.add(key+".debounce", "must be between 0s and %s, got %s", limit, in.Debounce)
		}
		if name != "door_sensor" && in.HeldOpen != 0 {
			ps.add(key+".held_open", "is only for inputs.door_sensor")
		}
		if name == "door_sensor" && (in.HeldOpen <= 0 || in.HeldOpen > time.Hour) {
			ps.add(key+".held_open", "must be > 0 and at most 1h, got %s", in.HeldOpen)
		}
	}
	if c.Inputs.ExitButton != nil && !c.HasBarrier() && slices.Contains(Styles, c.Device.Style) {
		ps.add("inputs.exit_button", "style %s has no barrier for the exit button to open", c.Device.Style)
	}
}
