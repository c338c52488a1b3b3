package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const devBase = `device: {id: gate-01, venue: "350582-0001", style: gate_all_in_one}
platform: {url: "http://127.0.0.1:8700"}
barrier: {driver: gpio, pin: GPIO17}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
`

func TestDeviceDefaults(t *testing.T) {
	c, err := Parse("d.yaml", []byte(devBase+`scanners:
  qr: {driver: evdev, device: /dev/input/event3}
  idcard: {driver: sam, port: /dev/ttyUSB1}
camera: {driver: http, url: "http://127.0.0.1:8080/snap.jpg"}
inputs:
  door_sensor: {pin: GPIO13}
  fire_alarm: {pin: GPIO6, active_low: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Scanners.IDCard.Baud != 115200 || c.Scanners.QR.DuplicateWindow != DefaultDuplicateWindow {
		t.Errorf("idcard baud %d, duplicate window %s", c.Scanners.IDCard.Baud, c.Scanners.QR.DuplicateWindow)
	}
	if c.Barrier.Mode != "pulse" || c.Barrier.MaxPulse != 10*time.Second {
		t.Errorf("barrier mode %q, max pulse %s", c.Barrier.Mode, c.Barrier.MaxPulse)
	}
	if c.Inputs.FireAlarm.Debounce != DefaultDebounce || c.Inputs.DoorSensor.HeldOpen != DefaultHeldOpen || c.Camera.Timeout != DefaultCameraWait {
		t.Errorf("inputs %+v %+v camera %+v", c.Inputs.FireAlarm, c.Inputs.DoorSensor, c.Camera)
	}
	c, err = Parse("d.yaml", []byte(devBase+"scanners:\n  qr: {driver: serial, port: /dev/ttyS1, duplicate_window: 2s}\n"))
	if err != nil || c.Scanners.QR.DuplicateWindow != 2*time.Second {
		t.Fatalf("duplicate window 2s: %v, %v", err, c)
	}
}

func TestDeviceProblems(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"evdev without device", "scanners:\n  qr: {driver: evdev}\n", "scanners.qr.device: is required for driver evdev"},
		{"idcard driver", "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\n  idcard: {driver: usb, port: /dev/x}\n", "scanners.idcard.driver: must be one of sam"},
		{"idcard no port", "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\n  idcard: {driver: sam}\n", "scanners.idcard.port: is required"},
		{"idcard shares the qr port", "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\n  idcard: {driver: sam, port: /dev/ttyS1}\n", "scanners.idcard.port: is the QR scanner's port too"},
		{"mode", "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\nbarrier: {driver: gpio, pin: GPIO17, mode: latch}\n", "barrier.mode: must be one of pulse, hold"},
		{"hold without door", "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\nbarrier: {driver: gpio, pin: GPIO17, mode: hold}\n", "barrier.mode: hold needs inputs.door_sensor"},
		{"pulse over max", "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\nbarrier: {driver: gpio, pin: GPIO17, pulse: 3s, max_pulse: 2s}\n", "barrier.pulse: must be at most barrier.max_pulse"},
		{"camera driver", "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\ncamera: {driver: ffmpeg}\n", "camera.driver: must be one of v4l2, http, mjpeg, none"},
		{"camera url", "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\ncamera: {driver: http, url: \"rtsp://cam\"}\n", "camera.url: must be an http://"},
		{"input pin", "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\ninputs:\n  tamper: {active_low: true}\n", "inputs.tamper.pin: is required"},
		{"input pin reused", "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\ninputs:\n  tamper: {pin: GPIO17}\n", "inputs.tamper.pin: GPIO17 is already used by barrier.pin"},
		{"fire debounce", "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\ninputs:\n  fire_alarm: {pin: GPIO6, debounce: 80ms}\n", "inputs.fire_alarm.debounce: must be between 0s and 50ms"},
		{"held_open elsewhere", "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\ninputs:\n  tamper: {pin: GPIO6, held_open: 5s}\n", "inputs.tamper.held_open: is only for inputs.door_sensor"},
		{"unknown input", "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\ninputs:\n  smoke: {pin: GPIO6}\n", "inputs.smoke: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := devBase
			if strings.Contains(tt.yaml, "barrier:") {
				base = strings.Replace(base, "barrier: {driver: gpio, pin: GPIO17}\n", "", 1)
			}
			_, err := Parse("d.yaml", []byte(base+tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
	// Exit button on a unit with no barrier.
	_, err := Parse("d.yaml", []byte(strings.Replace(devBase, "gate_all_in_one", "handheld", 1)+"scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\ninputs:\n  exit_button: {pin: GPIO5}\n"))
	if err == nil || !strings.Contains(err.Error(), "inputs.exit_button: style handheld has no barrier") {
		t.Fatalf("exit button on a handheld: %v", err)
	}
}

// TestCameraVerify: camera.verify's default follows the style (pillar: required; gate
// all-in-one: with_idcard; others: never), falls back to never without a camera, an
// ID-card reader or face among the accepted credentials; bad values and combinations name
// their key; camera.keep sealed needs the platform key.
func TestCameraVerify(t *testing.T) {
	const idcard = "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\n  idcard: {driver: sam, port: /dev/ttyUSB1}\n"
	const qrOnly = "scanners:\n  qr: {driver: serial, port: /dev/ttyS1}\n"
	const cam = "camera: {driver: http, url: \"http://127.0.0.1:8081/snap.jpg\"%s}\n"
	style := func(s string) string { return strings.Replace(devBase, "gate_all_in_one", s, 1) }
	holdOK := "barrier: {driver: gpio, pin: GPIO17}\n"
	defaults := []struct {
		name, yaml, want string
	}{
		{"gate all-in-one", devBase + idcard + fmt.Sprintf(cam, ""), CameraVerifyWithIDCard},
		{"pillar", style("pillar") + idcard + fmt.Sprintf(cam, ""), CameraVerifyRequired},
		{"handheld", strings.Replace(style("handheld"), holdOK, "", 1) + idcard + fmt.Sprintf(cam, ""), CameraVerifyNever},
		{"no ID-card reader", devBase + qrOnly + fmt.Sprintf(cam, ""), CameraVerifyNever},
		{"camera none", devBase + idcard + "camera: {driver: none}\n", CameraVerifyNever},
		{"no camera section", devBase + idcard, CameraVerifyNever},
		{"policy leaves out face", devBase + idcard + fmt.Sprintf(cam, "") + "policy: {credentials: {gate_all_in_one: [qr, idcard]}}\n", CameraVerifyNever},
		{"explicit never on a pillar", style("pillar") + idcard + fmt.Sprintf(cam, ", verify: never"), CameraVerifyNever},
	}
	for _, tt := range defaults {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("d.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.FaceVerify(); got != tt.want {
				t.Errorf("camera.verify %q, want %q", got, tt.want)
			}
			if c.Camera != nil && c.Camera.Keep != CameraKeepNone {
				t.Errorf("camera.keep %q, want none by default", c.Camera.Keep)
			}
		})
	}
	problems := []struct{ name, yaml, want string }{
		{"unknown mode", devBase + idcard + fmt.Sprintf(cam, ", verify: always"), "camera.verify: must be one of never, with_idcard, required"},
		{"no camera driver", devBase + idcard + "camera: {driver: none, verify: required}\n", "camera.verify: required needs camera.driver v4l2, http or mjpeg"},
		{"no ID-card reader", devBase + qrOnly + fmt.Sprintf(cam, ", verify: with_idcard"), "camera.verify: with_idcard needs scanners.idcard"},
		{"face not accepted", devBase + idcard + fmt.Sprintf(cam, ", verify: with_idcard") + "policy: {credentials: {gate_all_in_one: [qr, idcard]}}\n", "camera.verify: with_idcard needs face in policy.credentials.gate_all_in_one"},
		{"keep unknown", devBase + idcard + fmt.Sprintf(cam, ", keep: forever"), "camera.keep: must be one of none, sealed"},
		{"keep sealed without key", devBase + idcard + fmt.Sprintf(cam, ", keep: sealed"), "camera.keep: sealed needs privacy.platform_key_file"},
		{"keep sealed without verification", devBase + qrOnly + fmt.Sprintf(cam, ", keep: sealed"), "camera.keep: sealed keeps the snapshots of face verification, but camera.verify is never"},
	}
	for _, tt := range problems {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("d.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
}
