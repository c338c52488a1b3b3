package selftest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/open"
	"github.com/sentinel-edge/sentinel/drivers/camera"
	"github.com/sentinel-edge/sentinel/sim/card"
	"github.com/sentinel-edge/sentinel/sim/scanner"
)

// samOnPty serves a simulated SAM reader (sentinel-sim card's protocol) on a pty at a path
// in dir; prepare may break it before it serves.
func samOnPty(t *testing.T, prepare func(*card.Reader)) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("pty simulator is Linux-only")
	}
	path := filepath.Join(t.TempDir(), "ttyID")
	dup, err := scanner.OpenDuplex(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	sim := card.New(dup, card.Options{})
	if prepare != nil {
		prepare(sim)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = sim.Serve(ctx) }()
	t.Cleanup(func() { cancel(); dup.Close(); <-done })
	return path
}

func TestCheckIDCardReader(t *testing.T) {
	tests := []struct {
		name    string
		port    func(t *testing.T) string
		status  Status
		contain string
	}{
		{"answers", func(t *testing.T) string { return samOnPty(t, nil) }, StatusPass, "the SAM answered status (11 FF): success"},
		{"SAM fails", func(t *testing.T) string { return samOnPty(t, func(r *card.Reader) { r.FailSAM() }) }, StatusFail, "answered status (11 FF) with"},
		{"silent", func(t *testing.T) string { return samOnPty(t, func(r *card.Reader) { r.Inject(card.FaultSilent) }) }, StatusFail, "did not answer status"},
		{"bad checksum", func(t *testing.T) string { return samOnPty(t, func(r *card.Reader) { r.Inject(card.FaultChecksum) }) }, StatusFail, "did not answer status"},
		{"missing port", func(t *testing.T) string { return filepath.Join(t.TempDir(), "ttyNONE") }, StatusFail, "ttyNONE does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.Config{Scanners: config.Scanners{IDCard: &config.IDCardReader{Driver: "sam", Port: tt.port(t), Baud: 115200}}}
			r := runCheck(context.Background(), cfg, Options{}.withDefaults(), check{"id-card reader", checkIDCardReader})
			if r.Status != tt.status || !strings.Contains(r.Detail, tt.contain) || (r.Status == StatusFail && r.Fix == "") {
				t.Errorf("%s %q fix %q; want %s containing %q", r.Status, r.Detail, r.Fix, tt.status, tt.contain)
			}
		})
	}
	if r := checkIDCardReader(context.Background(), &config.Config{}, Options{}); r.Status != StatusNotApplicable {
		t.Errorf("no reader: %s, want N/A", r.Status)
	}
}

// snapFrames is a V4L2 device that gives one MJPEG frame.
type snapFrames struct{ closed atomic.Bool }

func (f *snapFrames) StartStreaming() error     { return nil }
func (f *snapFrames) StopStreaming() error      { return nil }
func (f *snapFrames) Close() error              { f.closed.Store(true); return nil }
func (f *snapFrames) WaitForFrame(uint32) error { return nil }
func (f *snapFrames) ReadFrame() ([]byte, error) {
	return []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 2, 0xFF, 0xD9}, nil
}

func TestCheckCamera(t *testing.T) {
	jpeg := []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02, 0xFF, 0xD9}
	var shots atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		shots.Add(1)
		switch r.URL.Path {
		case "/snap.jpg":
			if u, p, _ := r.BasicAuth(); u != "admin" || p != "cam-pass" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = w.Write(jpeg)
		case "/big":
			big := make([]byte, 2<<20+10)
			copy(big, jpeg)
			_, _ = w.Write(big)
		case "/html":
			_, _ = w.Write([]byte("<html>login</html>"))
		default:
			http.Error(w, "broken sensor", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	withAuth := strings.Replace(srv.URL, "http://", "http://admin:cam-pass@", 1)
	tests := []struct {
		name    string
		cam     config.Camera
		status  Status
		contain string
	}{
		{"snapshot", config.Camera{Driver: "http", URL: withAuth + "/snap.jpg", Timeout: 2 * time.Second}, StatusPass, "8-byte JPEG"},
		{"wrong password", config.Camera{Driver: "http", URL: srv.URL + "/snap.jpg", Timeout: 2 * time.Second}, StatusFail, "HTTP 401"},
		{"not a JPEG", config.Camera{Driver: "http", URL: withAuth + "/html", Timeout: 2 * time.Second}, StatusFail, "not a JPEG"},
		{"camera error", config.Camera{Driver: "http", URL: withAuth + "/other", Timeout: 2 * time.Second}, StatusFail, "HTTP 500"},
		{"too big for a face", config.Camera{Driver: "http", URL: withAuth + "/big", Timeout: 2 * time.Second, Verify: config.CameraVerifyWithIDCard}, StatusFail, "the platform takes for a face"},
		{"big, no face verification", config.Camera{Driver: "http", URL: withAuth + "/big", Timeout: 2 * time.Second, Verify: config.CameraVerifyNever}, StatusPass, "2097162-byte JPEG"},
		{"v4l2", config.Camera{Driver: "v4l2", Device: "/dev/video0", Timeout: 2 * time.Second}, StatusPass, "camera on /dev/video0 gave a 8-byte JPEG"},
	}
	dev := &snapFrames{}
	old := camera.OpenV4L2Device
	camera.OpenV4L2Device = func(string) (camera.Frames, error) { return dev, nil }
	t.Cleanup(func() { camera.OpenV4L2Device = old })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cam := tt.cam
			cfg := &config.Config{Camera: &cam}
			r := runCheck(context.Background(), cfg, Options{}.withDefaults(), check{"camera", checkCamera})
			if r.Status != tt.status || !strings.Contains(r.Detail, tt.contain) || (r.Status == StatusFail && r.Fix == "") {
				t.Errorf("%s %q fix %q; want %s containing %q", r.Status, r.Detail, r.Fix, tt.status, tt.contain)
			}
			if strings.Contains(r.Detail+r.Fix, "cam-pass") {
				t.Error("the camera's password shows in the result")
			}
		})
	}
	if !dev.closed.Load() {
		t.Error("the V4L2 device was not closed after the check")
	}
	if shots.Load() != 6 {
		t.Errorf("%d HTTP snapshots, want 6", shots.Load())
	}
	for _, c := range []*config.Camera{nil, {Driver: "none"}} {
		if r := checkCamera(context.Background(), &config.Config{Camera: c}, Options{}); r.Status != StatusNotApplicable {
			t.Errorf("camera %+v: %s, want N/A", c, r.Status)
		}
	}
	camera.OpenV4L2Device = func(string) (camera.Frames, error) { return nil, errors.New("no such device") }
	cfg := &config.Config{Camera: &config.Camera{Driver: "v4l2", Device: "/dev/video9", Timeout: time.Second}}
	if r := checkCamera(context.Background(), cfg, Options{}); r.Status != StatusFail || !strings.Contains(r.Detail, "camera.device") {
		t.Errorf("missing V4L2 device: %s %q, want FAIL naming camera.device", r.Status, r.Detail)
	}
}

// edgePin is a test pin that remembers the edge detection last asked of it.
type edgePin struct {
	*gpiotest.Pin
	edge gpio.Edge
}

func (p *edgePin) In(pull gpio.Pull, edge gpio.Edge) error {
	if err := p.Pin.In(pull, edge); err != nil {
		return err
	}
	p.edge = edge
	return nil
}

func TestCheckInputs(t *testing.T) {
	lines := map[string]*edgePin{
		"GPIO5":  {Pin: &gpiotest.Pin{N: "GPIO5", L: gpio.High, EdgesChan: make(chan gpio.Level, 1)}}, // exit button, released (active low)
		"GPIO6":  {Pin: &gpiotest.Pin{N: "GPIO6", L: gpio.Low, EdgesChan: make(chan gpio.Level, 1)}},  // door open (active low)
		"GPIO13": {Pin: &gpiotest.Pin{N: "GPIO13", L: gpio.Low, EdgesChan: make(chan gpio.Level, 1)}}, // fire alarm ACTIVE (active low)
		"GPIO19": {Pin: &gpiotest.Pin{N: "GPIO19", L: gpio.Low}},                                      // cannot detect edges
	}
	swap(t, &open.LookupInputPin, func(name string) (gpio.PinIO, error) {
		if p, ok := lines[name]; ok {
			return p, nil
		}
		return nil, errors.New("inputs: no such GPIO line " + name)
	})
	in := func(pin string) *config.Input {
		return &config.Input{Pin: pin, ActiveLow: true, Debounce: 30 * time.Millisecond}
	}
	cfg := &config.Config{Barrier: config.Barrier{Driver: "gpio", Pin: "GPIO17"}, Inputs: config.Inputs{
		ExitButton: in("GPIO5"), DoorSensor: in("GPIO6"), FireAlarm: in("GPIO13"), Tamper: in("GPIO19"),
	}}
	want := map[string]struct {
		status  Status
		contain string
	}{
		"exit_button": {StatusPass, "claimed GPIO5 with edge detection and released it; reads inactive"},
		"door_sensor": {StatusPass, "reads active"},
		"fire_alarm":  {StatusFail, "reads the fire alarm ACTIVE"},
		"tamper":      {StatusFail, "inputs.tamper.pin: cannot claim GPIO19"},
	}
	for _, name := range open.InputNames {
		r := checkInput(context.Background(), cfg, name)
		if w := want[name]; r.Status != w.status || !strings.Contains(r.Detail, w.contain) || (r.Status == StatusFail && r.Fix == "") {
			t.Errorf("%s: %s %q fix %q; want %s containing %q", name, r.Status, r.Detail, r.Fix, w.status, w.contain)
		}
	}
	for name, p := range lines {
		if p.edge != gpio.NoEdge {
			t.Errorf("%s left with edge detection %s", name, p.edge)
		}
	}
	cfg.Inputs.Tamper.Pin = "GPIO99"
	if r := checkInput(context.Background(), cfg, "tamper"); r.Status != StatusFail || !strings.Contains(r.Detail, "inputs.tamper.pin: inputs: no such GPIO line GPIO99") {
		t.Errorf("missing line: %s %q", r.Status, r.Detail)
	}
	if r := checkInput(context.Background(), &config.Config{}, "tamper"); r.Status != StatusNotApplicable {
		t.Errorf("no tamper input: %s, want N/A", r.Status)
	}
	// A bench unit (barrier.driver fake): every input is the lane's simulated line, which
	// reads inactive whatever active_low says; it passes and says it is simulated.
	cfg.Barrier.Driver = "fake"
	for _, name := range open.InputNames {
		if cfg.Inputs.Named()[name] == nil {
			continue
		}
		if r := checkInput(context.Background(), cfg, name); r.Status != StatusPass || !strings.Contains(r.Detail, "simulated") || !strings.Contains(r.Detail, "reads inactive") {
			t.Errorf("simulated %s: %s %q", name, r.Status, r.Detail)
		}
	}
}

// TestSelfTestEveryDevice: a gate all-in-one with every device configured, each real or a
// faithful stand-in, passes the whole self-test, and the device rows are there.
func TestSelfTestEveryDevice(t *testing.T) {
	r := newSelftestRig(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02, 0xFF, 0xD9})
	}))
	defer srv.Close()
	r.cfg.Scanners.IDCard = &config.IDCardReader{Driver: "sam", Port: samOnPty(t, nil), Baud: 115200}
	r.cfg.Camera = &config.Camera{Driver: "http", URL: srv.URL + "/snap.jpg", Timeout: 2 * time.Second, Verify: config.CameraVerifyWithIDCard}
	r.cfg.Inputs.FireAlarm = &config.Input{Pin: "GPIO13", Debounce: 20 * time.Millisecond}
	swap(t, &open.LookupInputPin, func(name string) (gpio.PinIO, error) {
		return &gpiotest.Pin{N: name, EdgesChan: make(chan gpio.Level, 1)}, nil
	})
	rows, ok := Run(context.Background(), r.cfg, r.opt)
	got := rowsByName(rows)
	for _, row := range rows {
		t.Logf("%-18s %-4s %s", row.Name, row.Status, row.Detail)
	}
	if !ok {
		t.Fatal("self-test failed on a unit where every device works")
	}
	for name, want := range map[string]Status{"id-card reader": StatusPass, "camera": StatusPass, "input fire_alarm": StatusPass, "input tamper": StatusNotApplicable, "input exit_button": StatusNotApplicable} {
		if got[name].Status != want {
			t.Errorf("%s: %s, want %s", name, got[name].Status, want)
		}
	}
}
