package e2e_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	simpop "github.com/sentinel-edge/sentinel/sim/population"
)

// End to end with the built binaries: `sentinel-sim api` serving a vendor dialect to
// several units (each its own app key), and `sentinel check`, `try` and `docking-check`
// run as a field engineer runs them.

func startAPI(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "sentinel-sim"), append([]string{"api", "--listen", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(15 * time.Second):
		t.Fatal("sentinel-sim api did not listen within 15s")
	}
	return ""
}

func writeSecret(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// e2eUnit writes one unit's config: its own app key, secret file and outbox.
func e2eUnit(t *testing.T, dir, name, addr, mapping, secretPath string) string {
	t.Helper()
	cfg := filepath.Join(dir, name+".yaml")
	mp, _ := filepath.Abs(filepath.Join("..", "configs", "mappings", mapping+".yaml"))
	body := fmt.Sprintf(`device: {id: %s, venue: "350582-0001", style: handheld}
scanners: {qr: {driver: serial, port: /dev/null}}
platform: {url: "http://%s", mapping: %s, app_key: %s, secret_file: %s}
queue: {path: %s}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
`, name, addr, mp, name, secretPath, filepath.Join(dir, name+".db"))
	writeSecret(t, cfg, body)
	return cfg
}

func sentinel(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(bin, "sentinel"), args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

func TestE2ECommissioningSharedPlatform(t *testing.T) {
	bin := binDir(t)
	dir := t.TempDir()
	pop := filepath.Join(dir, "pop.csv")
	if out, err := exec.Command(filepath.Join(bin, "sentinel-sim"), "population", "--out", pop).CombinedOutput(); err != nil {
		t.Fatalf("population: %v\n%s", err, out)
	}
	for name, secret := range map[string]string{"unit-a": "secret-of-unit-a-000001", "unit-b": "secret-of-unit-b-000002", "guess": "not-what-was-issued"} {
		writeSecret(t, filepath.Join(dir, name+".secret"), secret+"\n")
	}
	writeSecret(t, filepath.Join(dir, "keys"), "# app key, secret file\nunit-b "+filepath.Join(dir, "unit-b.secret")+"\n")
	addr := startAPI(t, bin, "--population", pop, "--dialect", "vendor-sorted", "--app-key", "unit-a", "--secret-file", filepath.Join(dir, "unit-a.secret"), "--keys-file", filepath.Join(dir, "keys"))
	for _, u := range []string{"unit-a", "unit-b"} {
		cfg := e2eUnit(t, dir, u, addr, "vendor-sorted", filepath.Join(dir, u+".secret"))
		if code, out := sentinel(t, bin, "check", "--config", cfg); code != 0 {
			t.Fatalf("%s check: %d\n%s", u, code, out)
		}
		if code, out := sentinel(t, bin, "try", "--config", cfg, "--qr", simpop.TokenGreenFresh); code != 0 || !strings.Contains(out, "pass ok") || strings.Contains(out, simpop.TokenGreenFresh) {
			t.Errorf("%s try: %d\n%s", u, code, out)
		}
		if code, out := sentinel(t, bin, "docking-check", "--config", cfg, "--qr", simpop.TokenGreenFresh, "--format", "md"); code != 0 || !strings.Contains(out, "**PASS") {
			t.Errorf("%s docking-check: %d\n%s", u, code, out)
		}
	}
	// A unit with unit-a's key and a guessed secret is refused.
	cfg := e2eUnit(t, dir, "unit-a", addr, "vendor-sorted", filepath.Join(dir, "guess.secret"))
	if code, out := sentinel(t, bin, "try", "--config", cfg, "--qr", simpop.TokenGreenFresh); code != 1 || !strings.Contains(out, "deny signature_rejected") {
		t.Errorf("guessed secret: %d\n%s", code, out)
	}
}

func TestE2ECommissioningSM2(t *testing.T) {
	bin := binDir(t)
	dir := t.TempDir()
	pop := filepath.Join(dir, "pop.csv")
	if out, err := exec.Command(filepath.Join(bin, "sentinel-sim"), "population", "--out", pop).CombinedOutput(); err != nil {
		t.Fatalf("population: %v\n%s", err, out)
	}
	priv, pub := sm2Keys(t)
	der, err := smx509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	writeSecret(t, filepath.Join(dir, "unit-s.pem"), priv)
	writeSecret(t, filepath.Join(dir, "unit-s.pub"), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	writeSecret(t, filepath.Join(dir, "keys"), "unit-s - "+filepath.Join(dir, "unit-s.pub")+"\n")
	addr := startAPI(t, bin, "--population", pop, "--dialect", "vendor-sm2", "--keys-file", filepath.Join(dir, "keys"))
	cfg := e2eUnit(t, dir, "unit-s", addr, "vendor-sm2", filepath.Join(dir, "unit-s.pem"))
	if code, out := sentinel(t, bin, "check", "--config", cfg); code != 0 || !strings.Contains(out, "sorted sm2 base64") {
		t.Fatalf("check: %d\n%s", code, out)
	}
	if code, out := sentinel(t, bin, "try", "--config", cfg, "--qr", simpop.TokenGreenFresh); code != 0 || !strings.Contains(out, "pass ok") || strings.Contains(out, "PRIVATE KEY") {
		t.Errorf("try: %d\n%s", code, out)
	}
	code, out := sentinel(t, bin, "docking-check", "--config", cfg, "--qr", simpop.TokenGreenFresh)
	if code != 0 || !strings.Contains(out, "PASS: every check passed") {
		t.Errorf("docking-check: %d\n%s", code, out)
	}
	if idNumber.MatchString(out) {
		t.Errorf("docking-check shows an ID number:\n%s", out)
	}
	// A key the platform does not know is refused.
	other, _ := sm2Keys(t)
	writeSecret(t, filepath.Join(dir, "other.pem"), other)
	cfg = e2eUnit(t, dir, "unit-s", addr, "vendor-sm2", filepath.Join(dir, "other.pem"))
	if code, out := sentinel(t, bin, "try", "--config", cfg, "--qr", simpop.TokenGreenFresh); code != 1 || !strings.Contains(out, "deny signature_rejected") {
		t.Errorf("other key: %d\n%s", code, out)
	}
}

// sm2Keys is a fresh SM2 key pair: the private key as PKCS#8 PEM, the public key.
func sm2Keys(t *testing.T) (string, *ecdsa.PublicKey) {
	t.Helper()
	k, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := smx509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), &k.PublicKey
}
