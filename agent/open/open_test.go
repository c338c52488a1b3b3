package open_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/open"
	"github.com/sentinel-edge/sentinel/internal/mqtttest"
	"github.com/sentinel-edge/sentinel/sim/card"
	"github.com/sentinel-edge/sentinel/sim/population"
	"github.com/sentinel-edge/sentinel/sim/scanner"
	"github.com/sentinel-edge/sentinel/verify"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func parse(t *testing.T, extra string) *config.Config {
	t.Helper()
	y := `device: {id: gate-01, venue: "350582-0001", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: /dev/ttyS1}
platform: {url: "http://127.0.0.1:8700"}
queue: {path: /tmp/q.db}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
` + extra
	cfg, err := config.Parse("open.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestRelayDrivers(t *testing.T) {
	cfg := parse(t, "barrier: {driver: fake}\n")
	r, err := open.Relay(cfg.Barrier)
	if err != nil || r == nil {
		t.Fatalf("fake barrier: %v, %v", r, err)
	}
	if r, err := open.Relay(config.Barrier{Driver: "none"}); r != nil || err != nil {
		t.Fatalf("no barrier: %v, %v", r, err)
	}
	prev := open.LookupRelayPin
	t.Cleanup(func() { open.LookupRelayPin = prev })
	open.LookupRelayPin = func(string) (gpio.PinIO, error) { return nil, errors.New("no such line") }
	cfg = parse(t, "barrier: {driver: gpio, pin: GPIO17}\n")
	if _, err := open.Relay(cfg.Barrier); err == nil || !strings.HasPrefix(err.Error(), "barrier.pin: ") {
		t.Fatalf("missing pin: %v", err)
	}
	out := &gpiotest.Pin{N: "GPIO17", L: gpio.High}
	open.LookupRelayPin = func(string) (gpio.PinIO, error) { return out, nil }
	if _, err := open.Relay(cfg.Barrier); err != nil || out.L != gpio.Low {
		t.Fatalf("gpio relay: %v; line %v, want de-energised at once", err, out.L)
	}
}

// With barrier.driver fake the lane's inputs are simulated lines: they must read inactive,
// whatever active_low says (the templates wire the fire alarm and tamper active-low), or a
// bench unit shows FIRE ALARM and holds its lane open.
func TestFakeInputsReadInactive(t *testing.T) {
	cfg := parse(t, `barrier: {driver: fake}
inputs:
  exit_button: {pin: GPIO5}
  door_sensor: {pin: GPIO13}
  fire_alarm: {pin: GPIO6, active_low: true}
  tamper: {pin: GPIO19, active_low: true}
`)
	ins, err := open.Inputs(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 4 {
		t.Fatalf("%d inputs", len(ins))
	}
	for _, in := range ins {
		if in.Active() {
			t.Errorf("simulated input %s reads active", in.Name())
		}
		_ = in.Halt()
	}
}

func TestInputsNameTheKey(t *testing.T) {
	prev := open.LookupInputPin
	t.Cleanup(func() { open.LookupInputPin = prev })
	open.LookupInputPin = func(name string) (gpio.PinIO, error) {
		if name == "GPIO6" {
			return nil, errors.New("no such line")
		}
		return &gpiotest.Pin{N: name, EdgesChan: make(chan gpio.Level, 1)}, nil
	}
	cfg := parse(t, `barrier: {driver: gpio, pin: GPIO17}
inputs:
  exit_button: {pin: GPIO5}
  fire_alarm: {pin: GPIO6}
`)
	if _, err := open.Inputs(cfg, quiet()); err == nil || !strings.HasPrefix(err.Error(), "inputs.fire_alarm.pin: ") {
		t.Fatalf("err %v, want one naming inputs.fire_alarm.pin", err)
	}
}

// A misconfigured reader port fails naming its key, and nothing is created at the path.
func TestReadersBadPort(t *testing.T) {
	dir := t.TempDir()
	cfg := parse(t, "barrier: {driver: fake}\n")
	cfg.Scanners.QR.Port = filepath.Join(dir, "noqr")
	cfg.Scanners.IDCard = &config.IDCardReader{Driver: "sam", Port: filepath.Join(dir, "noid"), Baud: 115200}
	if _, err := open.QRScanner(cfg, quiet(), nil); err == nil || !strings.HasPrefix(err.Error(), "scanners.qr.port: ") {
		t.Fatalf("qr: %v", err)
	}
	if _, err := open.IDCardReader(cfg, quiet(), nil); err == nil || !strings.HasPrefix(err.Error(), "scanners.idcard.port: ") {
		t.Fatalf("idcard: %v", err)
	}
	for _, p := range []string{cfg.Scanners.QR.Port, cfg.Scanners.IDCard.Port} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("opening created %s", p)
		}
	}
	cfg.Scanners.QR = nil
	cfg.Scanners.IDCard = nil
	if r, err := open.QRScanner(cfg, quiet(), nil); r != nil || err != nil {
		t.Fatalf("no QR scanner: %v %v", r, err)
	}
}

// The ID-card reader on a pty served by the simulator becomes a source of idcard
// credentials, and its coming online is reported.
func TestIDCardReaderSource(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pty simulator is Linux-only")
	}
	port := filepath.Join(t.TempDir(), "ttyID")
	dup, err := scanner.OpenDuplex(port, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dup.Close()
	people := population.Generate(population.GenerateOptions{Seed: 3, Random: 0})
	sim := card.New(dup, card.Options{})
	info := card.FromPerson(people[0])
	sim.Present(&info)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = sim.Serve(ctx) }()

	cfg := parse(t, "barrier: {driver: fake}\n")
	cfg.Scanners.IDCard = &config.IDCardReader{Driver: "sam", Port: port, Baud: 115200}
	online := make(chan bool, 4)
	src, err := open.IDCardReader(cfg, quiet(), func(on bool, _ error) { online <- on })
	if err != nil {
		t.Fatal(err)
	}
	creds := make(chan verify.Credential, 4)
	go func() { _ = src.Run(ctx, func(c verify.Credential, _ time.Time) { creds <- c }) }()
	select {
	case c := <-creds:
		if c.Kind != verify.KindIDCard || c.IDNumber != info.IDNumber || c.Name != info.Name {
			t.Fatalf("credential kind %s, id matches %v, name matches %v", c.Kind, c.IDNumber == info.IDNumber, c.Name == info.Name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no card read through the source within 10s")
	}
	select {
	case on := <-online:
		if !on {
			t.Fatal("reader reported offline")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reader's coming online was not reported")
	}
}

func TestTLSAndCredentials(t *testing.T) {
	dir := t.TempDir()
	ca := mqtttest.NewCA(t, dir, "ca")
	cert, key := ca.Issue(t, "client")
	junk := filepath.Join(dir, "junk.pem")
	_ = os.WriteFile(junk, []byte("not pem"), 0o600)

	if c, err := open.TLS(config.UplinkTLS{}); c != nil || err != nil {
		t.Fatalf("no TLS keys: %v, %v", c, err)
	}
	c, err := open.TLS(config.UplinkTLS{CAFile: ca.CertFile, CertFile: cert, KeyFile: key})
	if err != nil || c.RootCAs == nil || len(c.Certificates) != 1 || c.MinVersion < 0x0303 {
		t.Fatalf("TLS config %+v, %v", c, err)
	}
	for _, tt := range []struct {
		tls  config.UplinkTLS
		want string
	}{
		{config.UplinkTLS{CAFile: junk}, "uplink.tls.ca_file: " + junk + " holds no PEM certificate"},
		{config.UplinkTLS{CAFile: filepath.Join(dir, "none.pem")}, "uplink.tls.ca_file"},
		{config.UplinkTLS{CertFile: cert, KeyFile: junk}, "uplink.tls.cert_file, uplink.tls.key_file"},
	} {
		if _, err := open.TLS(tt.tls); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err %v, want %q", tt.tls, err, tt.want)
		}
	}

	user, pass, empty := filepath.Join(dir, "user"), filepath.Join(dir, "pass"), filepath.Join(dir, "empty")
	_ = os.WriteFile(user, []byte("gate-01\r\nignored\n"), 0o600)
	_ = os.WriteFile(pass, []byte("s3cret\n"), 0o600)
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	cfg := parse(t, "barrier: {driver: fake}\n")
	cfg.Uplink.UsernameFile, cfg.Uplink.PasswordFile = user, pass
	if u, p, err := open.Credentials(cfg); err != nil || u != "gate-01" || p != "s3cret" {
		t.Fatalf("credentials = %q, %q, %v", u, p, err)
	}
	cfg.Uplink.PasswordFile = empty
	if _, _, err := open.Credentials(cfg); err == nil || !strings.HasPrefix(err.Error(), "uplink.password_file: ") || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty credential: %v", err)
	}
	open644 := filepath.Join(dir, "pass644")
	_ = os.WriteFile(open644, []byte("s3cret\n"), 0o644)
	cfg.Uplink.PasswordFile = open644
	if _, _, err := open.Credentials(cfg); err == nil || !strings.Contains(err.Error(), "chmod 600 "+open644) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("world-readable password file: %v", err)
	}
	cfg.Uplink.PasswordFile = empty
	uc, err := open.Uplink(cfg, quiet())
	if err == nil || uc.Brokers[0] != "tcp://127.0.0.1:1883" {
		t.Fatalf("uplink with an empty password file: %+v, %v", uc, err)
	}
}
