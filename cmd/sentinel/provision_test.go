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
