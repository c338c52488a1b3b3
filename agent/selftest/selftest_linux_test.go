package selftest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/clock"

	"github.com/creack/pty"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/open"
	"github.com/sentinel-edge/sentinel/internal/mqtttest"
	"github.com/sentinel-edge/sentinel/sim/platform"
	"github.com/sentinel-edge/sentinel/sim/population"
)

// selftestRig is a unit whose every device and service is real or a faithful stand-in: a
// pty for the scanner, a periph test pin for the relay, an HTTP platform, Mosquitto.
type selftestRig struct {
	cfg      *config.Config
	pin      *gpiotest.Pin
	platform *httptest.Server
	broker   *mqtttest.Broker
	dir      string
	opt      Options
}

func newSelftestRig(t *testing.T) *selftestRig {
	t.Helper()
	r := &selftestRig{dir: t.TempDir(), pin: &gpiotest.Pin{N: "GPIO17"}}
	ptm, pts, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ptm.Close(); pts.Close() })
	r.platform = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/api/v1/ping" {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"code":"ok","server_time":"` + time.Now().UTC().Format(time.RFC3339) + `"}`))
	}))
	t.Cleanup(r.platform.Close)
	r.broker = mqtttest.Start(t)
	r.cfg = &config.Config{
		Device:   config.Device{ID: "gate-07", Venue: "350582-0001", Style: config.StyleGateAllInOne},
		Scanners: config.Scanners{QR: &config.QRScanner{Driver: "serial", Port: pts.Name(), Baud: 9600, MaxLength: 512}},
		Platform: config.Platform{URL: r.platform.URL, Timeout: 800 * time.Millisecond},
		Barrier:  config.Barrier{Driver: "gpio", Pin: "GPIO17", Pulse: 800 * time.Millisecond},
		Queue:    config.Queue{Path: filepath.Join(r.dir, "queue.db")},
		Uplink:   config.Uplink{Brokers: []string{r.broker.URL()}, ClientID: "sentinel-test-gate-07"},
	}
	swap(t, &open.LookupRelayPin, func(name string) (gpio.PinIO, error) {
		if name != r.pin.N {
			return nil, errors.New("relay: no such GPIO line " + name)
		}
		return r.pin, nil
	})
	r.opt = Options{Clock: func() string { return clock.Synced }}
	return r
}

func swap[T any](t *testing.T, p *T, v T) {
	old := *p
	*p = v
	t.Cleanup(func() { *p = old })
}

func rowsByName(rows []Row) map[string]Row {
	m := map[string]Row{}
	for _, r := range rows {
		m[r.Name] = r
	}
	return m
}

func TestSelfTestAllPass(t *testing.T) {
	r := newSelftestRig(t)
	r.pin.L = gpio.High // energised, as if left so: the check must leave it de-energised
	rows, ok := Run(context.Background(), r.cfg, r.opt)
	for _, row := range rows {
		t.Logf("%-14s %-4s %s", row.Name, row.Status, row.Detail)
	}
	if !ok {
		t.Fatal("self-test failed on a unit where everything works")
	}
	want := []string{"provisioned", "qr scanner", "barrier relay", "platform", "broker", "clock", "disk"}
	got := rowsByName(rows)
	for _, name := range want {
		if got[name].Status != StatusPass {
			t.Errorf("%s: %s, want PASS", name, got[name].Status)
		}
	}
	if r.pin.L != gpio.Low {
		t.Error("the relay check left the line energised")
	}
	if left, _ := filepath.Glob(filepath.Join(r.dir, ".selftest-*")); len(left) != 0 {
		t.Errorf("the disk check left %v behind", left)
	}
}

func TestSelfTestFailures(t *testing.T) {
	tests := []struct {
		name   string
		breakf func(t *testing.T, r *selftestRig)
		check  string
		detail string // the failing row's detail must contain it
	}{
		{"port missing", func(t *testing.T, r *selftestRig) { r.cfg.Scanners.QR.Port = filepath.Join(r.dir, "ttyNONE") }, "qr scanner", "ttyNONE does not exist"},
		{"port not a tty", func(t *testing.T, r *selftestRig) {
			f := filepath.Join(r.dir, "plain")
			os.WriteFile(f, nil, 0o600)
			r.cfg.Scanners.QR.Port = f
		}, "qr scanner", "is not a serial device"},
		{"wrong pin", func(t *testing.T, r *selftestRig) { r.cfg.Barrier.Pin = "GPIO99" }, "barrier relay", "barrier.pin"},
		{"platform down", func(t *testing.T, r *selftestRig) { r.platform.Close() }, "platform", "ping failed"},
		{"platform 500", func(t *testing.T, r *selftestRig) {
			r.platform.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
		}, "platform", "HTTP 500"},
		{"broker down", func(t *testing.T, r *selftestRig) { r.broker.Stop() }, "broker", "uplink.brokers[0]"},
		{"second broker down", func(t *testing.T, r *selftestRig) {
			r.cfg.Uplink.Brokers = append(r.cfg.Uplink.Brokers, "tcp://127.0.0.1:1")
		}, "broker", "uplink.brokers[1]"},
		{"clock unsynced", func(t *testing.T, r *selftestRig) {
			r.opt.Clock = func() string { return clock.Unsynced }
		}, "clock", "not confirmed synchronised"},
		{"queue dir missing", func(t *testing.T, r *selftestRig) { r.cfg.Queue.Path = filepath.Join(r.dir, "no", "q.db") }, "disk", "queue.path"},
		{"disk nearly full", func(t *testing.T, r *selftestRig) { r.opt.MinFreeDisk = 1 << 62 }, "disk", "only"},
		{"unprovisioned", func(t *testing.T, r *selftestRig) { r.cfg.Device.ID = config.Unprovisioned }, "provisioned", "device.id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newSelftestRig(t)
			tt.breakf(t, r)
			rows, ok := Run(context.Background(), r.cfg, r.opt)
			if ok {
				t.Fatal("self-test passed with a broken unit")
			}
			for _, row := range rows {
				switch {
				case row.Name == tt.check:
					if row.Status != StatusFail || !strings.Contains(row.Detail, tt.detail) || row.Fix == "" {
						t.Errorf("%s: %s %q fix %q; want FAIL naming %q, with a fix", row.Name, row.Status, row.Detail, row.Fix, tt.detail)
					}
				case row.Status == StatusFail:
					t.Errorf("%s failed too: %s", row.Name, row.Detail)
				}
			}
		})
	}
}

func TestSelfTestNoBarrier(t *testing.T) {
	r := newSelftestRig(t)
	r.cfg.Device.Style = config.StyleHandheld
	r.cfg.Barrier = config.Barrier{Driver: "none"}
	rows, ok := Run(context.Background(), r.cfg, r.opt)
	if !ok {
		t.Fatalf("handheld failed: %+v", rows)
	}
	if s := rowsByName(rows)["barrier relay"].Status; s != StatusNotApplicable {
		t.Errorf("barrier relay on a handheld: %s, want N/A", s)
	}
}

func TestRunCheckPanicAndHang(t *testing.T) {
	opt := Options{Timeout: 50 * time.Millisecond}.withDefaults()
	r := runCheck(context.Background(), &config.Config{}, opt, check{"boom", func(context.Context, *config.Config, Options) Result { panic("kaput") }})
	if r.Status != StatusFail || !strings.Contains(r.Detail, "kaput") {
		t.Errorf("panicking check: %+v", r)
	}
	release := make(chan struct{})
	defer close(release)
	r = runCheck(context.Background(), &config.Config{}, opt, check{"hang", func(context.Context, *config.Config, Options) Result { <-release; return passed("late") }})
	if r.Status != StatusFail || !strings.Contains(r.Detail, "no answer within") {
		t.Errorf("hanging check: %+v", r)
	}
	r = runCheck(context.Background(), &config.Config{}, opt, check{"empty", func(context.Context, *config.Config, Options) Result { return Result{} }})
	if r.Status != StatusFail {
		t.Errorf("a check that returns nothing must fail, got %+v", r)
	}
}

// The selftest reads the credential files with the code run uses: a password file run
// refuses (empty) fails the broker check, instead of passing it as an empty password.
func TestSelfTestRefusesWhatRunRefuses(t *testing.T) {
	r := newSelftestRig(t)
	user, pass := filepath.Join(r.dir, "user"), filepath.Join(r.dir, "pass")
	if err := os.WriteFile(user, []byte("gate-07\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pass, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.cfg.Uplink.UsernameFile, r.cfg.Uplink.PasswordFile = user, pass
	_, runErr := open.Uplink(r.cfg, nil)
	if runErr == nil {
		t.Fatal("run accepts an empty password file; this test needs one it refuses")
	}
	rows, ok := Run(context.Background(), r.cfg, r.opt)
	broker := rowsByName(rows)["broker"]
	if ok || broker.Status != StatusFail || !strings.Contains(broker.Detail, "uplink.password_file") {
		t.Fatalf("selftest with a password file run refuses (%v): ok %v, broker %s %q", runErr, ok, broker.Status, broker.Detail)
	}
}

// The platform check signs a verification when platform.secret_file is set: the reference
// platform with signing accepts the right secret and refuses a wrong one.
func TestSelfTestPlatformSignature(t *testing.T) {
	pop, err := population.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "k3Jd8sPq0ZxV2mW9tY4uB7nR"
	tests := []struct {
		name, secret, status, detail string
	}{
		{"right secret", secret, "PASS", "signed request accepted"},
		{"wrong secret", "zz9Jd8sPq0ZxV2mW9tY4uB7n", "FAIL", "signed verification failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(platform.NewServer(pop, platform.Options{Signing: &platform.Signing{AppKey: "AK-7", Secret: []byte(secret)}}))
			defer srv.Close()
			f := filepath.Join(t.TempDir(), "app-secret")
			if err := os.WriteFile(f, []byte(tt.secret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := &config.Config{Device: config.Device{ID: "gate-07", Venue: "v1"},
				Platform: config.Platform{URL: srv.URL, Timeout: time.Second, Signing: "hmac-sha256", AppKey: "AK-7", SecretFile: f}}
			r := checkPlatform(context.Background(), cfg, Options{}.withDefaults())
			if string(r.Status) != tt.status || !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("%s %q (fix %q), want %s containing %q", r.Status, r.Detail, r.Fix, tt.status, tt.detail)
			}
			if r.Status == StatusFail && !strings.Contains(r.Fix, "signature") {
				t.Errorf("the fix does not point at the signature: %s", r.Fix)
			}
		})
	}
}
