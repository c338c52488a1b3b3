package open

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/drivers/camera"
	"github.com/sentinel-edge/sentinel/drivers/idcard"
	"github.com/sentinel-edge/sentinel/drivers/inputs"
	"github.com/sentinel-edge/sentinel/drivers/qrscan"
	"github.com/sentinel-edge/sentinel/drivers/relay"
	"github.com/sentinel-edge/sentinel/verify"
)

// OS seams; tests swap them.
var (
	// LookupRelayPin finds the GPIO line of the barrier relay.
	LookupRelayPin = relay.Lookup
	// LookupInputPin finds the GPIO line of a lane input.
	LookupInputPin = func(name string) (gpio.PinIO, error) { return inputs.Lookup(name) }
)

// Barrier drivers (barrier.driver).
const (
	BarrierGPIO = "gpio" // a relay on a GPIO line (barrier.pin)
	BarrierFake = "fake" // simulation: the real relay logic on an in-memory line
	BarrierNone = "none" // a unit without a barrier
)

// Relay builds the barrier relay the config asks for, de-energised at once; nil when the
// unit has none.
func Relay(b config.Barrier) (*relay.GPIO, error) {
	opt := relay.Options{ActiveLow: b.ActiveLow, MaxPulse: b.MaxPulse}
	switch b.Driver {
	case BarrierGPIO:
		pin, err := LookupRelayPin(b.Pin)
		if err != nil {
			return nil, fmt.Errorf("barrier.pin: %w", err)
		}
		r, err := relay.New(pin, opt)
		if err != nil {
			return nil, fmt.Errorf("barrier.pin: %w", err)
		}
		return r, nil
	case BarrierFake:
		// Simulation only, chosen explicitly in config.
		r, err := relay.New(&gpiotest.Pin{N: "FAKE-BARRIER"}, opt)
		if err != nil {
			return nil, fmt.Errorf("barrier: %w", err)
		}
		return r, nil
	default:
		return nil, nil
	}
}

// Reader is a credential reader: a pipeline source whose coming and going can be watched.
type Reader interface {
	Run(ctx context.Context, emit func(verify.Credential, time.Time)) error
	String() string
}

// qrScanner is what the QR source needs of a scanner driver; qrscan.Serial and qrscan.Evdev
// are ones.
type qrScanner interface {
	Run(ctx context.Context, emit func(qrscan.Scan)) error
	OnState(func(online bool, err error))
	String() string
}

// QR is a QR scanner as a source of qr credentials.
type QR struct{ s qrScanner }

func (q QR) String() string { return q.s.String() }

// Run emits each scan as a QR credential.
func (q QR) Run(ctx context.Context, emit func(verify.Credential, time.Time)) error {
	return q.s.Run(ctx, func(s qrscan.Scan) {
		emit(verify.Credential{Kind: verify.KindQR, QRToken: s.Token}, s.At)
	})
}

// QRScanner opens the QR scanner the config names (scanners.qr): its port or device must
// open now, so that a wrong path fails start-up with its key. onState, when set, is told
// when it goes offline and comes back. It returns nil without a QR scanner.
func QRScanner(cfg *config.Config, log *slog.Logger, onState func(online bool, err error)) (Reader, error) {
	q := cfg.Scanners.QR
	if q == nil {
		return nil, nil
	}
	var s interface {
		qrScanner
		Open() error
	}
	key := "scanners.qr.port"
	switch q.Driver {
	case "evdev":
		key = "scanners.qr.device"
		s = qrscan.NewEvdev(qrscan.EvdevConfig{Device: q.Device, MaxLength: q.MaxLength, DuplicateWindow: q.DuplicateWindow}, log)
	default:
		s = qrscan.NewSerial(qrscan.SerialConfig{Port: q.Port, Baud: q.Baud, MaxLength: q.MaxLength, DuplicateWindow: q.DuplicateWindow}, log)
	}
	if onState != nil {
		s.OnState(onState)
	}
	if err := s.Open(); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return QR{s}, nil
}

// IDCard is an ID-card reader as a source of idcard credentials: the card's ID number and
// name (the record masks them); the photo stays in the driver.
type IDCard struct{ r *idcard.SAM }

func (c IDCard) String() string { return c.r.String() }

// Run emits each card read as an idcard credential.
func (c IDCard) Run(ctx context.Context, emit func(verify.Credential, time.Time)) error {
	return c.r.Run(ctx, func(card idcard.Card) {
		emit(verify.Credential{Kind: verify.KindIDCard, IDNumber: card.IDNumber, Name: card.Name}, time.Now())
	})
}

// IDCardReader opens the ID-card reader the config names (scanners.idcard); nil without
// one.
func IDCardReader(cfg *config.Config, log *slog.Logger, onState func(online bool, err error)) (Reader, error) {
	r := cfg.Scanners.IDCard
	if r == nil {
		return nil, nil
	}
	sam := SAM(cfg, log, onState)
	if err := sam.Open(); err != nil {
		return nil, fmt.Errorf("scanners.idcard.port: %w", err)
	}
	return IDCard{sam}, nil
}

// Camera builds the camera the config names (camera.driver); nil without one. With a face
// trigger (camera.trigger detect or presence) it is a camera.Stream too, and it streams once
// its Run starts; its Snapshot (the card check's) is then the newest frame. The caller halts
// it.
func Camera(cfg *config.Config, log *slog.Logger) (camera.Camera, error) {
	c := cfg.Camera
	if !cfg.HasCamera() {
		return nil, nil
	}
	switch c.Driver {
	case "http":
		h, err := camera.NewHTTP(c.URL, c.Timeout)
		if err != nil {
			return nil, fmt.Errorf("camera.url: %w", err)
		}
		return h, nil
	case "mjpeg":
		m, err := camera.NewMJPEG(c.URL, StreamOptions(cfg), log)
		if err != nil {
			return nil, fmt.Errorf("camera.url: %w", err)
		}
		return m, nil
	case "v4l2":
		v, err := camera.NewV4L2Stream(c.Device, StreamOptions(cfg), log)
		if err != nil {
			return nil, fmt.Errorf("camera.device: %w", err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("camera.driver: unknown driver %q (known: http, mjpeg, v4l2, none)", c.Driver)
}

// StreamOptions are a stream's settings: camera.stall, camera.max_frame_bytes and
// camera.timeout (connecting, and a snapshot).
func StreamOptions(cfg *config.Config) camera.StreamOptions {
	c := cfg.Camera
	if c == nil {
		return camera.StreamOptions{}
	}
	return camera.StreamOptions{MaxFrameBytes: c.MaxFrameBytes, Stall: c.Stall, Timeout: c.Timeout}
}

// InputPin finds the line of a lane input: its GPIO line, or — when the barrier itself is
// simulated (barrier.driver fake) — an in-memory line that rests at the input's inactive
// level, whatever active_low says, so that a bench unit's inputs read nothing.
func InputPin(cfg *config.Config, in *config.Input) (gpio.PinIO, error) {
	if cfg.Barrier.Driver == BarrierFake {
		level := gpio.Low
		if in.ActiveLow {
			level = gpio.High
		}
		return &gpiotest.Pin{N: "FAKE-" + in.Pin, L: level, EdgesChan: make(chan gpio.Level, 16)}, nil
	}
	return LookupInputPin(in.Pin)
}

// Inputs builds the lane's inputs the config names (inputs.*), each claimed with edge
// detection. The caller halts them (lane.Run does).
func Inputs(cfg *config.Config, log *slog.Logger) ([]*inputs.Input, error) {
	var ins []*inputs.Input
	for _, name := range InputNames {
		i, err := Input(cfg, name, log)
		if err != nil {
			for _, i := range ins {
				_ = i.Halt()
			}
			return nil, err
		}
		if i != nil {
			ins = append(ins, i)
		}
	}
	return ins, nil
}

// InputNames are the lane inputs, in the order they are built and shown.
var InputNames = []string{"exit_button", "door_sensor", "fire_alarm", "tamper"}

// SAM builds the ID-card reader's driver (scanners.idcard) without opening it: the daemon
// opens it (IDCardReader), the selftest probes it.
func SAM(cfg *config.Config, log *slog.Logger, onState func(online bool, err error)) *idcard.SAM {
	r := cfg.Scanners.IDCard
	return idcard.NewSAM(idcard.Config{Port: r.Port, Baud: r.Baud, DuplicateWindow: r.DuplicateWindow, OnState: onState}, log)
}

// Input claims one lane input (inputs.<name>) with edge detection: its line (InputPin), then
// the claim (ClaimInput); nil when it is not configured. The caller halts it.
func Input(cfg *config.Config, name string, log *slog.Logger) (*inputs.Input, error) {
	in := cfg.Inputs.Named()[name]
	if in == nil {
		return nil, nil
	}
	pin, err := InputPin(cfg, in)
	if err != nil {
		return nil, fmt.Errorf("inputs.%s.pin: %w", name, err)
	}
	return ClaimInput(name, pin, in, log)
}

// ClaimInput claims pin for the lane input name with edge detection and debouncing.
func ClaimInput(name string, pin gpio.PinIO, in *config.Input, log *slog.Logger) (*inputs.Input, error) {
	i, err := inputs.New(name, pin, inputs.Options{ActiveLow: in.ActiveLow, Debounce: in.Debounce}, log)
	if err != nil {
		return nil, fmt.Errorf("inputs.%s.pin: cannot claim %s with edge detection: %w", name, in.Pin, err)
	}
	return i, nil
}
