package selftest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/open"
	"github.com/sentinel-edge/sentinel/drivers/idcard"
	"github.com/sentinel-edge/sentinel/verify"
)

// The device checks: the ID-card reader answers its status, the camera gives a snapshot
// (which is dropped at once), and every configured input's line can be claimed. Each is N/A
// on a unit without it.

func checkIDCardReader(ctx context.Context, cfg *config.Config, _ Options) Result {
	r := cfg.Scanners.IDCard
	if r == nil {
		return notApplicable("no ID-card reader configured")
	}
	fi, err := os.Stat(r.Port)
	if errors.Is(err, fs.ErrNotExist) {
		return failed(fmt.Sprintf("scanners.idcard.port: %s does not exist", r.Port),
			"check the reader's USB cable and power, then set scanners.idcard.port to the device it appears as (ls -l /dev/serial/by-id/ /dev/ttyUSB*)")
	}
	if err == nil && fi.Mode()&fs.ModeCharDevice == 0 {
		return failed(fmt.Sprintf("scanners.idcard.port: %s is not a serial device", r.Port), "set scanners.idcard.port to the reader's tty")
	}
	err = open.SAM(cfg, nil, nil).Probe(ctx)
	var se *idcard.StatusError
	switch {
	case err == nil:
		return passed("opened %s at %d baud; the SAM answered status (11 FF): success", r.Port, r.Baud)
	case errors.As(err, &se):
		return failed(fmt.Sprintf("scanners.idcard.port: the SAM on %s answered status (11 FF) with %s", r.Port, se.Status),
			"power-cycle the reader; if it persists the SAM module is faulty or not authorised: replace the reader")
	case errors.Is(err, idcard.ErrTimeout), errors.Is(err, idcard.ErrChecksum), errors.Is(err, idcard.ErrLength):
		return failed(fmt.Sprintf("scanners.idcard.port: %s opened but the reader did not answer status (11 FF) properly: %v", r.Port, err),
			"check scanners.idcard.baud (115200 for most SAM readers) and that the port is the ID-card reader, not the QR scanner")
	default:
		fix := "stop the running daemon first (systemctl stop sentinel): it holds the port; otherwise check the cable"
		if strings.Contains(strings.ToLower(err.Error()), "permission") {
			fix = "the sentinel user must be in group dialout (the package adds it; re-login or reinstall), or fix the device's udev rule"
		}
		return failed(fmt.Sprintf("scanners.idcard.port: cannot talk to %s: %v", r.Port, err), fix)
	}
}

func checkCamera(ctx context.Context, cfg *config.Config, _ Options) Result {
	if !cfg.HasCamera() {
		return notApplicable("no camera configured")
	}
	c := cfg.Camera
	key, fix := "camera.url", "open camera.url in a browser from the unit's network; check the address, the credentials in the URL and that the camera's snapshot (JPEG) interface is on"
	if c.Driver == "mjpeg" {
		fix = "open camera.url in a browser from the unit's network; check the address, the credentials in the URL and that it serves an MJPEG stream (multipart/x-mixed-replace), not a page or a redirect"
	}
	if c.Driver == "v4l2" {
		key, fix = "camera.device", "check the camera's USB cable; set camera.device to its node (v4l2-ctl --list-devices); the sentinel user must be in group video; stop the running daemon first (it holds the device)"
	}
	cam, err := open.Camera(cfg, nil)
	if err != nil {
		return failed(fmt.Sprintf("%s: %v", key, err), fix)
	}
	defer func() { _ = cam.Halt() }()
	sctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	start := time.Now()
	img, err := cam.Snapshot(sctx)
	took := time.Since(start)
	n := len(img)
	clear(img) // a face, maybe: never kept
	if err != nil {
		return failed(fmt.Sprintf("%s: no snapshot from %s within camera.timeout (%s): %v", key, cam, c.Timeout, err), fix)
	}
	detail := fmt.Sprintf("%s gave a %d-byte JPEG in %s (not stored); camera.verify %s, camera.trigger %s", cam, n, max(took.Round(time.Millisecond), time.Millisecond), cfg.FaceVerify(), cfg.FaceTrigger())
	if n > verify.MaxFaceJPEG && cfg.FaceVerify() != config.CameraVerifyNever {
		return failed(detail+fmt.Sprintf(": more than the %d bytes (2 MiB) the platform takes for a face", verify.MaxFaceJPEG),
			"lower the camera's snapshot resolution or JPEG quality")
	}
	return passed("%s", detail)
}

// inputCheck is the check of the lane input name.
func inputCheck(name string) checkFunc {
	return func(ctx context.Context, cfg *config.Config, _ Options) Result { return checkInput(ctx, cfg, name) }
}

func checkInput(_ context.Context, cfg *config.Config, name string) Result {
	in := cfg.Inputs.Named()[name]
	if in == nil {
		return notApplicable("inputs.%s not configured", name)
	}
	key := "inputs." + name + ".pin"
	pin, err := open.InputPin(cfg, in) // as run finds and claims it
	if err != nil {
		return failed(fmt.Sprintf("%s: %v", key, err), "set "+key+" to the GPIO line the input is wired to (docs/field-guide.md, Wire); the sentinel user must be in group gpio")
	}
	i, err := open.ClaimInput(name, pin, in, nil)
	if err != nil {
		return failed(err.Error(), "stop the running daemon first (systemctl stop sentinel); another program may hold the line (gpioinfo shows its consumer)")
	}
	active := i.Active()
	if err := i.Halt(); err != nil {
		return failed(fmt.Sprintf("%s: %s claimed but not released: %v", key, in.Pin, err), "check the GPIO line's wiring and the board's GPIO driver")
	}
	state := map[bool]string{true: "active", false: "inactive"}[active]
	if active && name == "fire_alarm" {
		return failed(fmt.Sprintf("%s: claimed %s, and it reads the fire alarm ACTIVE (active_low %v)", key, in.Pin, in.ActiveLow),
			"if there is no alarm: check the loop's wiring (a cut normally-closed loop reads as an alarm) and inputs.fire_alarm.active_low; the agent would hold every barrier open")
	}
	if cfg.Barrier.Driver == open.BarrierFake {
		// The lane's own simulated line (open.InputPin): it rests inactive whatever
		// active_low says, as the daemon's does on a bench unit.
		return passed("simulated (barrier.driver fake): %s is an in-memory line that reads %s, whatever active_low says; nothing is wired to %s", name, state, in.Pin)
	}
	return passed("claimed %s with edge detection and released it; reads %s (active_low %v)", in.Pin, state, in.ActiveLow)
}
