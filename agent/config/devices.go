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
	// Face-only passages (camera.trigger).
	DefaultMinFace       = 80
	DefaultRearm         = 2 * time.Second
	DefaultStall         = 3 * time.Second
	DefaultMaxFrameBytes = 2 << 20
	maxFrameBytes        = 8 << 20
	minFrameBytes        = 16 << 10
	maxFaceBytes         = 2 << 20 // verify.MaxFaceJPEG: the most a face search takes
)

// IDCardReader is a second-generation ID-card reader (SAM module) on a serial line.
type IDCardReader struct {
	Driver string `yaml:"driver"` // sam
	Port   string `yaml:"port"`
	Baud   int    `yaml:"baud"`
	// DuplicateWindow makes the same card laid again within it one passage; 0s turns it off.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
}

// Camera captures stills for face verification, and, streaming, watches for faces.
type Camera struct {
	Driver  string        `yaml:"driver"` // v4l2 | http | mjpeg | none
	Device  string        `yaml:"device"` // v4l2: /dev/video0
	URL     string        `yaml:"url"`    // http: the snapshot URL; mjpeg: the stream's (may hold credentials)
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

	// Trigger is how a face-only passage starts (docking interface v3's face search):
	// detect (the on-device detector sees a good face; the pillar build), presence (the
	// sensor at inputs.presence fires: the best of a few frames is searched), or none (the
	// default: a face is checked only after a card, camera.verify).
	Trigger string `yaml:"trigger"`
	// MinFace is the smallest face side searched, frame pixels (default 80); a smaller one
	// is told to come closer.
	MinFace int `yaml:"min_face"`
	// Rearm: a face out of view this long has left (default 2s); the next one is a new
	// person. Also the presence sensor's quiet time between two people.
	Rearm time.Duration `yaml:"rearm"`
	// Retrigger: a person still in view is searched again this long after (default 0s:
	// never).
	Retrigger time.Duration `yaml:"retrigger"`
	// Stall: no frame for this long makes the camera offline (event camera_offline) and the
	// stream is connected again (default 3s).
	Stall time.Duration `yaml:"stall"`
	// MaxFrameBytes bounds one frame of the stream (default 2 MiB); a larger one is skipped
	// and counted.
	MaxFrameBytes int `yaml:"max_frame_bytes"`
	// Cascade is the detector's cascade file (default Debian's LBP frontal face,
	// /usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml).
	Cascade string `yaml:"cascade"`
}

// Face triggers (camera.trigger).
const (
	CameraTriggerNone     = "none"
	CameraTriggerDetect   = "detect"
	CameraTriggerPresence = "presence"
)

// CameraTriggers lists camera.trigger's values.
var CameraTriggers = []string{CameraTriggerDetect, CameraTriggerPresence, CameraTriggerNone}

// FaceTrigger is camera.trigger in force: none without a camera section.
func (c *Config) FaceTrigger() string {
	if c.Camera == nil || c.Camera.Trigger == "" {
		return CameraTriggerNone
	}
	return c.Camera.Trigger
}

// StreamingCamera says whether the camera delivers a stream (mjpeg, v4l2).
func (c *Config) StreamingCamera() bool {
	return c.Camera != nil && (c.Camera.Driver == "mjpeg" || c.Camera.Driver == "v4l2")
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
	return c.Camera != nil && (c.Camera.Driver == "http" || c.Camera.Driver == "v4l2" || c.Camera.Driver == "mjpeg")
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
	// Presence is an IR or radar presence sensor in front of the camera (camera.trigger:
	// presence): not a lane input, it starts a face-only passage.
	Presence *Input `yaml:"presence"`
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
	for k, v := range map[string]*Input{"exit_button": in.ExitButton, "door_sensor": in.DoorSensor, "fire_alarm": in.FireAlarm, "tamper": in.Tamper, "presence": in.Presence} {
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
	if cam := c.Camera; cam != nil {
		cameraStreamDefaults(cam, present)
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
	for _, step := range []func(*Config, *problems){validateScanners, validateBarrierMode, validateCamera, validateFaceTrigger, validateInputs} {
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
	case "http", "mjpeg":
		if u, err := url.Parse(cam.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || badPort(u) {
			what := map[string]string{"http": "snapshot", "mjpeg": "MJPEG stream"}[cam.Driver]
			ps.add("camera.url", "must be an http:// or https:// %s URL with a host", what)
		}
	case "none":
	default:
		ps.add("camera.driver", "must be one of v4l2, http, mjpeg, none, got %q", cam.Driver)
	}
	if cam.Timeout < 0 || cam.Timeout > 30*time.Second {
		ps.add("camera.timeout", "must be > 0 and at most 30s, got %s", cam.Timeout)
	}
	switch {
	case !slices.Contains(CameraVerifyModes, cam.Verify):
		ps.add("camera.verify", "must be one of %s, got %q", strings.Join(CameraVerifyModes, ", "), cam.Verify)
	case cam.Verify != CameraVerifyNever && !c.HasCamera():
		ps.add("camera.verify", "%s needs camera.driver v4l2, http or mjpeg", cam.Verify)
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
		if cam.Verify == CameraVerifyNever && (cam.Trigger == CameraTriggerNone || cam.Trigger == "") {
			ps.add("camera.keep", "sealed keeps the snapshots of face verification, but camera.verify is never and camera.trigger none")
		}
	default:
		ps.add("camera.keep", "must be one of none, sealed, got %q", cam.Keep)
	}
}

func cameraStreamDefaults(cam *Camera, present func(string) bool) {
	// An explicit zero or empty value is validated, not replaced: only an absent key takes
	// its default.
	if !present("camera.trigger") {
		cam.Trigger = CameraTriggerNone
	}
	if !present("camera.min_face") {
		cam.MinFace = DefaultMinFace
	}
	if !present("camera.rearm") {
		cam.Rearm = DefaultRearm
	}
	if !present("camera.stall") {
		cam.Stall = DefaultStall
	}
	if !present("camera.max_frame_bytes") {
		cam.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if !present("camera.cascade") {
		cam.Cascade = "/usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml"
	}
}

// validateFaceTrigger checks the keys of face-only passages (camera.trigger and the stream's
// bounds).
func validateFaceTrigger(c *Config, ps *problems) {
	cam := c.Camera
	if cam == nil {
		if c.Inputs.Presence != nil {
			ps.add("inputs.presence", "is wired but there is no camera section (camera.trigger: presence)")
		}
		return
	}
	switch {
	case !slices.Contains(CameraTriggers, cam.Trigger):
		ps.add("camera.trigger", "must be one of %s, got %q", strings.Join(CameraTriggers, ", "), cam.Trigger)
	case cam.Trigger != CameraTriggerNone && !c.StreamingCamera():
		ps.add("camera.trigger", "%s needs a streaming camera: camera.driver mjpeg or v4l2, got %q", cam.Trigger, cam.Driver)
	case cam.Trigger != CameraTriggerNone && len(c.AcceptedCredentials()) > 0 && !slices.Contains(c.AcceptedCredentials(), "face"):
		ps.add("camera.trigger", "%s makes face-only passages, but policy.credentials.%s leaves out face", cam.Trigger, c.Device.Style)
	case cam.Trigger == CameraTriggerPresence && c.Inputs.Presence == nil:
		ps.add("camera.trigger", "presence needs inputs.presence (the IR or radar sensor's GPIO line)")
	}
	if c.Inputs.Presence != nil && cam.Trigger != CameraTriggerPresence {
		ps.add("inputs.presence", "is wired but camera.trigger is %s, not presence", cam.Trigger)
	}
	if cam.MinFace < 20 || cam.MinFace > 2000 {
		ps.add("camera.min_face", "must be between 20 and 2000 pixels, got %d", cam.MinFace)
	}
	if cam.Rearm < 100*time.Millisecond || cam.Rearm > time.Minute {
		ps.add("camera.rearm", "must be between 100ms and 1m, got %s", cam.Rearm)
	}
	if cam.Retrigger != 0 && (cam.Retrigger < time.Second || cam.Retrigger > time.Hour) {
		ps.add("camera.retrigger", "must be 0s (never) or between 1s and 1h, got %s", cam.Retrigger)
	}
	if cam.Stall < 500*time.Millisecond || cam.Stall > time.Minute {
		ps.add("camera.stall", "must be between 500ms and 1m, got %s", cam.Stall)
	}
	if cam.MaxFrameBytes < minFrameBytes || cam.MaxFrameBytes > maxFrameBytes {
		ps.add("camera.max_frame_bytes", "must be between %d and %d bytes, got %d", minFrameBytes, maxFrameBytes, cam.MaxFrameBytes)
	} else if cam.Trigger == CameraTriggerPresence && cam.MaxFrameBytes > maxFaceBytes {
		ps.add("camera.max_frame_bytes", "must be at most %d bytes with camera.trigger presence (the whole frame is searched, and the platform takes at most 2 MiB), got %d", maxFaceBytes, cam.MaxFrameBytes)
	}
	if strings.ContainsRune(cam.Cascade, 0) || !strings.HasPrefix(cam.Cascade, "/") {
		ps.add("camera.cascade", "must be an absolute path to an OpenCV cascade file, got %q", cam.Cascade)
	}
}

func validateInputs(c *Config, ps *problems) {
	pins := map[string]string{}
	if b := c.Barrier; b.Driver == "gpio" && b.Pin != "" {
		pins[b.Pin] = "barrier.pin"
	}
	for _, name := range []string{"exit_button", "door_sensor", "fire_alarm", "tamper", "presence"} {
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
