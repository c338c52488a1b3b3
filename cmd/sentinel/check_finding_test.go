package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue #13's finding: `sentinel check` accepted a mapping whose time layout has no time
// verb (it "parses" nothing) and which gave no sample to prove it. It must name the
// mapping's key and line and exit 2.
func TestCheckFindingLayoutWithoutVerb(t *testing.T) {
	dir := t.TempDir()
	mapping := filepath.Join(dir, "m.yaml")
	ref, err := os.ReadFile("../../configs/mappings/reference.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(ref), "nat_sampled_at: {path: data.nat.sampled_at}", `nat_sampled_at: {path: data.nat.sampled_at, layout: "yyyy-MM-dd HH:mm:ss"}`, 1)
	y = y[:strings.Index(y, "sample:")]
	line := strings.Count(y[:strings.Index(y, "nat_sampled_at:")], "\n") + 1
	if err := os.WriteFile(mapping, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "c.yaml")
	body := `device: {id: d1, venue: v1, style: handheld}
scanners: {qr: {driver: serial, port: /dev/null}}
platform: {url: "http://127.0.0.1:1", mapping: ` + mapping + `}
queue: {path: ` + filepath.Join(dir, "q.db") + `}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"check", "--config", cfg}, &out, &errb)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d; stdout %s", code, exitUsage, out.String())
	}
	if !strings.Contains(errb.String(), "response.nat_sampled_at.layout") || !strings.Contains(errb.String(), fmt.Sprintf("line %d", line)) {
		t.Errorf("stderr does not name the mapping key and line: %s", errb.String())
	}
}

// Issue #14, finding 7: check said ok for the unprovisioned config the package ships, which
// run refuses. It says why run would refuse it, naming key and line, and exits 2.
func TestCheckFindingUnprovisioned(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"check", "--config", "../../build/sentinel.yaml"}, &out, &errb)
	if code != exitUsage || strings.Contains(out.String(), ": ok") {
		t.Fatalf("exit %d, want %d; stdout %s", code, exitUsage, out.String())
	}
	for _, want := range []string{"NOT PROVISIONED", "line 11: device.id", `"unprovisioned"`, "line 12: device.venue", "sentinel provision"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
	// A secret file run would refuse: open to others.
	dir := t.TempDir()
	secret := filepath.Join(dir, "app-secret")
	if err := os.WriteFile(secret, []byte("k3Jd8sPq0ZxV2mW9tY4uB7nR\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "c.yaml")
	body := `device: {id: d1, venue: v1, style: handheld}
scanners: {qr: {driver: serial, port: /dev/null}}
platform: {url: "http://127.0.0.1:1", app_key: AK1, secret_file: ` + secret + `}
queue: {path: ` + filepath.Join(dir, "q.db") + `}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"check", "--config", cfg}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "line 3: platform.secret_file") ||
		!strings.Contains(errb.String(), "chmod 600") {
		t.Errorf("a secret open to others: exit %d: %s", code, errb.String())
	}
	if err := os.Chmod(secret, 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"check", "--config", cfg}, &out, &errb); code != exitOK || !strings.Contains(out.String(), ": ok") {
		t.Errorf("a provisioned config: exit %d: %s", code, out.String())
	}
}
