package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/internal/privacy"
)

// testCA writes a CA certificate and key into dir.
func testCA(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test broker CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(k)
	certPath, keyPath = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	write(t, certPath, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	write(t, keyPath, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})), 0o600)
	return certPath, keyPath
}

func write(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
}

// provisionInputs makes the files an integrator receives from the platform and the broker's CA.
type provisionInputs struct {
	dir, secret, platformKey, caCert, caKey, out string
}

func newProvisionInputs(t *testing.T) provisionInputs {
	t.Helper()
	dir := t.TempDir()
	in := provisionInputs{dir: dir, out: filepath.Join(dir, "etc-sentinel")}
	in.secret = filepath.Join(dir, "issued-secret")
	write(t, in.secret, "k3Jd8sPq0ZxV2mW9tY4uB7nR\n", 0o600)
	pub, _, err := privacy.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	in.platformKey = filepath.Join(dir, "platform.pub")
	write(t, in.platformKey, privacy.EncodeKey(*pub), 0o644)
	in.caCert, in.caKey = testCA(t, dir)
	return in
}

func (in provisionInputs) args(extra ...string) []string {
	a := []string{"provision", "--style", "gate_all_in_one", "--device-id", "gate-07", "--venue", "350582-0001",
		"--platform-url", "https://127.0.0.1:8700", "--template", "../../configs/gate_all_in_one.yaml",
		"--out", in.out, "--owner", "",
		"--app-key", "AK-gate-07", "--app-secret-file", in.secret, "--platform-key", in.platformKey,
		"--broker", "ssl://127.0.0.1:8883", "--broker", "ssl://127.0.0.1:8884",
		"--ca-cert", in.caCert}
	return append(a, extra...)
}

func TestProvisionWithCA(t *testing.T) {
	in := newProvisionInputs(t)
	var out, errb bytes.Buffer
	if code := run(in.args("--ca-key", in.caKey, "--scanner-port", "/dev/ttyUSB3", "--barrier-pin", "GPIO22"), &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	cfgPath := filepath.Join(in.out, "sentinel.yaml")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("the rendered config does not load: %v", err)
	}
	if ps := config.CheckProvisioned(cfg); len(ps) != 0 {
		t.Fatalf("the provisioned unit is not provisioned: %v", ps)
	}
	got := []string{cfg.Device.ID, cfg.Device.Venue, cfg.Platform.URL, cfg.Platform.AppKey, cfg.Scanners.QR.Port, cfg.Barrier.Pin, strings.Join(cfg.Uplink.Brokers, " ")}
	want := []string{"gate-07", "350582-0001", "https://127.0.0.1:8700", "AK-gate-07", "/dev/ttyUSB3", "GPIO22", "ssl://127.0.0.1:8883 ssl://127.0.0.1:8884"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("rendered value %d = %q, want %q", i, got[i], want[i])
		}
	}
	// What the template says and provisioning does not touch stays.
	if cfg.Barrier.Pulse != 800*time.Millisecond || cfg.Policy.NATMaxAge != 72*time.Hour || cfg.Device.Style != "gate_all_in_one" {
		t.Errorf("template values lost: pulse %s nat_max_age %s style %s", cfg.Barrier.Pulse, cfg.Policy.NATMaxAge, cfg.Device.Style)
	}
	modes := map[string]os.FileMode{
		"secrets":                 0o750,
		"secrets/app-secret":      0o600,
		"secrets/mqtt-client.key": 0o600,
		"tls/client.crt":          0o644,
		"tls/ca.crt":              0o644,
		"platform.pub":            0o644,
		"sentinel.yaml":           0o644,
	}
	for rel, m := range modes {
		fi, err := os.Stat(filepath.Join(in.out, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if fi.Mode().Perm() != m {
			t.Errorf("%s has mode %#o, want %#o", rel, fi.Mode().Perm(), m)
		}
	}
	for key, rel := range map[string]string{"platform.secret_file": "secrets/app-secret", "uplink.tls.ca_file": "tls/ca.crt",
		"uplink.tls.cert_file": "tls/client.crt", "uplink.tls.key_file": "secrets/mqtt-client.key", "privacy.platform_key_file": "platform.pub"} {
		if v, _ := cfg.StringAt(key); v != filepath.Join(in.out, rel) {
			t.Errorf("%s = %q, want %s", key, v, filepath.Join(in.out, rel))
		}
	}
	// The certificate is the unit's: issued by the CA, for client auth, to its key and client id.
	certPEM, _ := os.ReadFile(filepath.Join(in.out, "tls/client.crt"))
	blk, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(in.caCert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify against the CA for client auth: %v", err)
	}
	if cert.Subject.CommonName != "sentinel-350582-0001-gate-07" {
		t.Errorf("client certificate CN %q", cert.Subject.CommonName)
	}
	if secret, _ := os.ReadFile(filepath.Join(in.out, "secrets/app-secret")); strings.TrimSpace(string(secret)) != "k3Jd8sPq0ZxV2mW9tY4uB7nR" {
		t.Error("the app secret was not copied as issued")
	}
	if strings.Contains(out.String()+errb.String(), "k3Jd8sPq0ZxV2mW9tY4uB7nR") {
		t.Error("provision printed the secret")
	}
	// The rendered config passes sentinel check.
	var cout, cerr bytes.Buffer
	if code := run([]string{"check", "--config", cfgPath}, &cout, &cerr); code != exitOK {
		t.Errorf("check of the provisioned config: exit %d: %s", code, cerr.String())
	}

	// Run again: the identity (client key) is kept; --force replaces it.
	key1, _ := os.ReadFile(filepath.Join(in.out, "secrets/mqtt-client.key"))
	if code := run(in.args("--ca-key", in.caKey), &out, &errb); code != exitOK {
		t.Fatalf("second run: exit %d: %s", code, errb.String())
	}
	key2, _ := os.ReadFile(filepath.Join(in.out, "secrets/mqtt-client.key"))
	if !bytes.Equal(key1, key2) {
		t.Error("a second provision replaced the unit's key without --force")
	}
	if code := run(in.args("--ca-key", in.caKey, "--force"), &out, &errb); code != exitOK {
		t.Fatalf("--force: exit %d: %s", code, errb.String())
	}
	key3, _ := os.ReadFile(filepath.Join(in.out, "secrets/mqtt-client.key"))
	if bytes.Equal(key1, key3) {
		t.Error("--force kept the old key")
	}
}

func TestProvisionCSRThenCert(t *testing.T) {
	in := newProvisionInputs(t)
	var out, errb bytes.Buffer
	if code := run(in.args(), &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	csrPEM, err := os.ReadFile(filepath.Join(in.out, "tls/client.csr"))
	if err != nil {
		t.Fatalf("no CSR: %v", err)
	}
	if !strings.Contains(out.String(), "client.csr") {
		t.Errorf("provision did not say what to do with the CSR: %s", out.String())
	}
	cfg, err := config.Load(filepath.Join(in.out, "sentinel.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Uplink.TLS.CertFile != "" {
		t.Error("cert_file set before there is a certificate")
	}
	// The CA signs the CSR (as the broker operator would); provision installs the certificate.
	blk, _ := pem.Decode(csrPEM)
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("bad CSR: %v", err)
	}
	caPEM, _ := os.ReadFile(in.caCert)
	caKeyPEM, _ := os.ReadFile(in.caKey)
	cb, _ := pem.Decode(caPEM)
	ca, _ := x509.ParseCertificate(cb.Bytes)
	kb, _ := pem.Decode(caKeyPEM)
	caKey, _ := x509.ParseECPrivateKey(kb.Bytes)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(7), Subject: csr.Subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		ca, csr.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	signed := filepath.Join(in.dir, "signed.crt")
	write(t, signed, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	if code := run(in.args("--client-cert", signed), &out, &errb); code != exitOK {
		t.Fatalf("--client-cert: exit %d: %s", code, errb.String())
	}
	cfg, err = config.Load(filepath.Join(in.out, "sentinel.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Uplink.TLS.CertFile == "" || cfg.Uplink.TLS.KeyFile == "" {
		t.Error("cert_file/key_file not set after the certificate was installed")
	}
	// A certificate for another key is refused.
	other := filepath.Join(in.dir, "other.crt")
	ok, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ = x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(8), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}, ca, &ok.PublicKey, caKey)
	write(t, other, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	errb.Reset()
	if code := run(in.args("--client-cert", other), &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "does not match") {
		t.Errorf("a certificate for another key: exit %d: %s", code, errb.String())
	}
}

func TestProvisionRefuses(t *testing.T) {
	tests := []struct {
		name   string
		secret string // content of the secret file; "" keeps the good one
		args   func(in provisionInputs) []string
		want   string
	}{
		{"empty secret", "\n", nil, "is empty"},
		{"default secret", "changeme\n", nil, "default placeholder"},
		{"placeholder secret", "CHANGE-ME-TO-THE-ISSUED-SECRET\n", nil, "placeholder"},
		{"short secret", "x7Qp2\n", nil, "at least 16"},
		{"missing secret file", "", func(in provisionInputs) []string {
			return replaceArg(in.args(), "--app-secret-file", filepath.Join(in.dir, "nope"))
		}, "--app-secret-file"},
		{"app key without secret", "", func(in provisionInputs) []string {
			return dropArg(in.args(), "--app-secret-file")
		}, "go together"},
		{"bad platform key", "", func(in provisionInputs) []string {
			bad := filepath.Join(in.dir, "bad.pub")
			os.WriteFile(bad, []byte("not-a-key\n"), 0o644)
			return replaceArg(in.args(), "--platform-key", bad)
		}, "X25519"},
		{"unknown style", "", func(in provisionInputs) []string { return replaceArg(in.args(), "--style", "turnstile") }, "not a device style"},
		{"template of another style", "", func(in provisionInputs) []string { return replaceArg(in.args(), "--style", "pillar") }, "is for style gate_all_in_one"},
		{"placeholder device id", "", func(in provisionInputs) []string {
			return replaceArg(in.args(), "--device-id", config.Unprovisioned)
		}, "placeholder"},
		{"bad device id", "", func(in provisionInputs) []string { return replaceArg(in.args(), "--device-id", "gate 07/x") }, "device.id"},
		{"no venue", "", func(in provisionInputs) []string { return dropArg(in.args(), "--venue") }, "--venue is required"},
		{"ca key without ca", "", func(in provisionInputs) []string {
			return append(dropArg(in.args(), "--ca-cert"), "--ca-key", in.caKey)
		}, "--ca-key needs --ca-cert"},
		{"client cert before any key", "", func(in provisionInputs) []string {
			return in.args("--client-cert", in.caCert)
		}, "no client key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newProvisionInputs(t)
			if tt.secret != "" {
				write(t, in.secret, tt.secret, 0o600)
			}
			args := in.args()
			if tt.args != nil {
				args = tt.args(in)
			}
			var out, errb bytes.Buffer
			code := run(args, &out, &errb)
			if code == exitOK {
				t.Fatalf("provision accepted it: %s", out.String())
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("error lacks %q: %s", tt.want, errb.String())
			}
			if _, err := os.Stat(filepath.Join(in.out, "sentinel.yaml")); err == nil {
				t.Error("a refused provision wrote the config")
			}
			if s := strings.TrimSpace(tt.secret); s != "" && strings.Contains(errb.String(), s) {
				t.Error("the error repeats the secret")
			}
		})
	}
}

func replaceArg(args []string, flag, v string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == flag && i+1 < len(out) {
			out[i+1] = v
		}
	}
	return out
}

func dropArg(args []string, flag string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == flag {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// run refuses a unit that was never provisioned, or whose secret is a default, before it
// touches the outbox, the scanner or the network; the demo, without secrets, runs.
func TestRunRefusesUnprovisioned(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "app-secret")
	write(t, secret, "changeme\n", 0o600)
	base := `device: {id: %ID%, venue: "350582-0001", style: handheld}
scanners: {qr: {driver: serial, port: ` + filepath.Join(dir, "no-such-tty") + `}}
platform: {url: "http://127.0.0.1:1"%PLATFORM%}
queue: {path: ` + filepath.Join(dir, "q.db") + `}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
`
	tests := []struct{ name, id, platform, want string }{
		{"placeholder id", config.Unprovisioned, "", "device.id"},
		{"default secret", "hh-01", ", app_key: AK1, secret_file: " + secret, "platform.secret_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, tt.name+".yaml")
			write(t, cfg, strings.NewReplacer("%ID%", tt.id, "%PLATFORM%", tt.platform).Replace(base), 0o600)
			var out, errb bytes.Buffer
			if code := run([]string{"run", "--config", cfg}, &out, &errb); code != exitFailure {
				t.Fatalf("exit %d, want %d: %s", code, exitFailure, errb.String())
			}
			if !strings.Contains(errb.String(), "not provisioned") || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("error does not say the unit is not provisioned, naming %s: %s", tt.want, errb.String())
			}
			if strings.Contains(errb.String(), "scanners.qr.port") {
				t.Error("run reached the scanner before refusing")
			}
			if _, err := os.Stat(filepath.Join(dir, "q.db")); err == nil {
				t.Error("run created the outbox before refusing")
			}
		})
	}
}

// Issue #14, finding 7: `--device-id "gate 08"` was reported as line 7 of a rendered file,
// exit 1. A bad value is a usage error naming the flag and its value, exit 2, and nothing
// is written.
func TestProvisionFindingBadFlagNamed(t *testing.T) {
	in := newProvisionInputs(t)
	var out, errb bytes.Buffer
	code := run(replaceArg(in.args(), "--device-id", "gate 08"), &out, &errb)
	if code != exitUsage {
		t.Errorf("exit %d, want %d: %s", code, exitUsage, errb.String())
	}
	if !strings.Contains(errb.String(), `--device-id "gate 08": device.id: must be`) || strings.Contains(errb.String(), "line ") {
		t.Errorf("the error does not name the flag (or names a line of a file nobody wrote): %s", errb.String())
	}
	if _, err := os.Stat(in.out); err == nil {
		t.Error("a refused provision wrote something")
	}
}

// Issue #14, finding 7: the ID-card port, camera, input pins, queue path and install section
// were left to hand edits. A gate and a pillar are provisioned with flags only.
func TestProvisionFlagsOnly(t *testing.T) {
	in := newProvisionInputs(t)
	gate := in.args("--ca-key", in.caKey,
		"--scanner-port", "/dev/ttyS3", "--idcard-port", "/dev/ttyUSB2", "--camera-url", "http://192.168.1.64/snapshot.jpg",
		"--barrier-pin", "GPIO22", "--exit-button-pin", "GPIO5", "--door-sensor-pin", "GPIO6", "--fire-alarm-pin", "GPIO16", "--tamper-pin", "GPIO26",
		"--queue-path", "/srv/sentinel/queue.db",
		"--install-unit", "福清市某某超市", "--install-location", "北门入口", "--install-brand", "Acme", "--install-style-label", "闸机一体机", "--install-status", "installed",
		"--set", "screen.listen=127.0.0.1:8081", "--set", "inputs.fire_alarm.debounce=40ms")
	var out, errb bytes.Buffer
	if code := run(gate, &out, &errb); code != exitOK {
		t.Fatalf("gate: exit %d: %s", code, errb.String())
	}
	cfg, err := config.Load(filepath.Join(in.out, "sentinel.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{cfg.Scanners.QR.Port, cfg.Scanners.IDCard.Port, cfg.Camera.Driver, cfg.Camera.URL, cfg.Camera.Device, cfg.Barrier.Pin,
		cfg.Inputs.ExitButton.Pin, cfg.Inputs.DoorSensor.Pin, cfg.Inputs.FireAlarm.Pin, cfg.Inputs.Tamper.Pin, cfg.Queue.Path,
		cfg.Install.Unit, cfg.Install.Location, cfg.Install.Brand, cfg.Install.StyleLabel, cfg.Install.Status, cfg.Screen.Listen, cfg.Inputs.FireAlarm.Debounce.String()}
	want := []string{"/dev/ttyS3", "/dev/ttyUSB2", "http", "http://192.168.1.64/snapshot.jpg", "", "GPIO22",
		"GPIO5", "GPIO6", "GPIO16", "GPIO26", "/srv/sentinel/queue.db",
		"福清市某某超市", "北门入口", "Acme", "闸机一体机", "installed", "127.0.0.1:8081", "40ms"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("gate:\n got %q\nwant %q", got, want)
	}
	if !cfg.Inputs.FireAlarm.ActiveLow {
		t.Error("the template's active_low was lost")
	}

	// The pillar: its template has no QR scanner; a USB camera replaces the template's.
	in2 := newProvisionInputs(t)
	pillar := replaceArg(replaceArg(replaceArg(in2.args("--ca-key", in2.caKey,
		"--idcard-port", "/dev/ttyUSB0", "--camera-device", "/dev/video2", "--barrier-pin", "GPIO27",
		"--door-sensor-pin", "GPIO22", "--fire-alarm-pin", "GPIO23", "--install-unit", "福清市某某医院", "--install-location", "门诊楼东门"),
		"--style", "pillar"), "--template", "../../configs/pillar.yaml"), "--device-id", "pillar-03")
	out.Reset()
	if code := run(pillar, &out, &errb); code != exitOK {
		t.Fatalf("pillar: exit %d: %s", code, errb.String())
	}
	cfg, err = config.Load(filepath.Join(in2.out, "sentinel.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Scanners.QR != nil || cfg.Scanners.IDCard.Port != "/dev/ttyUSB0" || cfg.Camera.Driver != "v4l2" || cfg.Camera.Device != "/dev/video2" ||
		cfg.FaceVerify() != config.CameraVerifyRequired || cfg.Install.Status != config.InstallInstalling || cfg.Install.Unit != "福清市某某医院" {
		t.Errorf("pillar: qr %v, idcard %+v, camera %+v, verify %s, install %+v", cfg.Scanners.QR, cfg.Scanners.IDCard, cfg.Camera, cfg.FaceVerify(), cfg.Install)
	}
	var cout, cerr bytes.Buffer
	if code := run([]string{"check", "--config", filepath.Join(in2.out, "sentinel.yaml")}, &cout, &cerr); code != exitOK {
		t.Errorf("check of the provisioned pillar: exit %d: %s", code, cerr.String())
	}
}

// Every flag's value is checked before anything is written; the error names the flag.
func TestProvisionRefusesFlagValues(t *testing.T) {
	tests := []struct {
		name  string
		extra []string
		want  string
	}{
		{"idcard on the scanner's port", []string{"--scanner-port", "/dev/ttyS1", "--idcard-port", "/dev/ttyS1"}, `--idcard-port "/dev/ttyS1": scanners.idcard.port: is the QR scanner's port too`},
		{"camera url", []string{"--camera-url", "ftp://cam/x.jpg"}, `--camera-url "ftp://cam/x.jpg": camera.url: must be an http://`},
		{"both cameras", []string{"--camera-url", "http://cam/x.jpg", "--camera-device", "/dev/video0"}, "not both"},
		{"camera verify", []string{"--camera-verify", "sometimes"}, `--camera-verify "sometimes": camera.verify: must be one of`},
		{"input on the barrier's pin", []string{"--barrier-pin", "GPIO5", "--tamper-pin", "GPIO5"}, `--tamper-pin "GPIO5": inputs.tamper.pin: GPIO5 is already used by barrier.pin`},
		{"install status", []string{"--install-status", "done"}, `--install-status "done": install.status: must be one of installed, installing`},
		{"install text", []string{"--install-location", "北门\x01"}, `--install-location "北门\x01": install.location: must not contain control characters`},
		{"broker", []string{"--broker", "mqtt.city.example"}, `--broker "ssl://127.0.0.1:8883 ssl://127.0.0.1:8884 mqtt.city.example": uplink.brokers[2]: must be a broker URL`},
		{"platform url", []string{"--platform-url", "platform.example"}, `--platform-url "platform.example": platform.url: must be an http://`},
		{"set unknown key", []string{"--set", "screen.lisen=x"}, "no config key screen.lisen"},
		{"set bad value", []string{"--set", "screen.verdict_hold=soon"}, `--set "screen.verdict_hold=soon": screen.verdict_hold: must be a duration`},
		{"set without value", []string{"--set", "screen.listen"}, "give KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newProvisionInputs(t)
			var out, errb bytes.Buffer
			if code := run(in.args(tt.extra...), &out, &errb); code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, errb.String())
			}
			if _, err := os.Stat(in.out); err == nil {
				t.Error("a refused provision wrote something")
			}
		})
	}
}
