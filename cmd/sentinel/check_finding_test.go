package main

import (
	"bytes"
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
	if !strings.Contains(errb.String(), "response.nat_sampled_at.layout") || !strings.Contains(errb.String(), "line 44") {
		t.Errorf("stderr does not name the mapping key and line: %s", errb.String())
	}
}
