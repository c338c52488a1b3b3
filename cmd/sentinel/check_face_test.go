package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A face trigger with a mapping that has no face search would send the face alone to the 1:1
// endpoint and never judge a score: check refuses it (exit 2), naming the key and the mapping;
// with the reference mapping (which has one) it passes.
func TestCheckFaceTriggerNeedsFaceSearch(t *testing.T) {
	dir := t.TempDir()
	province, err := filepath.Abs("../../configs/mappings/province-gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, mapping string
		code          int
	}{
		{"province mapping", "\n  mapping: " + province, exitUsage},
		{"reference mapping", "", exitOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, "c.yaml")
			body := `device: {id: p1, venue: v1, style: pillar}
camera: {driver: mjpeg, url: "http://127.0.0.1:1/stream", trigger: detect}
policy: {credentials: {pillar: [face]}}
barrier: {driver: fake}
platform:
  url: "http://127.0.0.1:1"` + tt.mapping + `
queue: {path: ` + filepath.Join(dir, "q.db") + `}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
`
			if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := run([]string{"check", "--config", cfg}, &out, &errb)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out.String(), errb.String())
			}
			if tt.code == exitUsage && (!strings.Contains(errb.String(), "camera.trigger: detect needs endpoints.face_search") || !strings.Contains(errb.String(), "province-gateway.yaml")) {
				t.Errorf("stderr: %s", errb.String())
			}
		})
	}
}
