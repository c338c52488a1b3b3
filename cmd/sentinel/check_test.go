package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkUnit writes a config naming mapping (and the platform keys extra), and the files.
func checkUnit(t *testing.T, mapping, extra string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m := ""
	if mapping != "" {
		if !filepath.IsAbs(mapping) {
			mapping = filepath.Join(dir, mapping)
		}
		m = ", mapping: " + mapping
	}
	cfg := filepath.Join(dir, "sentinel.yaml")
	body := fmt.Sprintf(`device: {id: d1, venue: v1, style: handheld}
scanners: {qr: {driver: serial, port: /dev/null}}
platform: {url: "http://127.0.0.1:1"%s%s}
queue: {path: %s}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
`, m, strings.ReplaceAll(extra, "DIR", dir), filepath.Join(dir, "q.db"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func shipped(t *testing.T, name string) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "configs", "mappings", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every shipped mapping is proven by its sample, and check prints it as the unit reads it.
func TestCheckShippedMappings(t *testing.T) {
	for _, name := range []string{"reference", "province-gateway", "vendor-sorted", "vendor-md5", "vendor-sha256", "vendor-sm2"} {
		t.Run(name, func(t *testing.T) {
			abs, _ := filepath.Abs(filepath.Join("..", "..", "configs", "mappings", name+".yaml"))
			secret := testSecret
			if name == "vendor-sm2" {
				secret, _ = sm2Keys(t)
			}
			cfg := checkUnit(t, abs, ", app_key: a, secret_file: DIR/secret", map[string]string{"secret": secret})
			code, out, errb := runCmd("check", "--config", cfg)
			if code != exitOK || !strings.Contains(out, "mapping "+name+" (") || !strings.Contains(out, "the sample answer, as the unit reads it:") || !strings.Contains(out, "health_code") {
				t.Fatalf("exit %d\n%s%s", code, out, errb)
			}
			if strings.Contains(out, "11010519491231002X") || !strings.Contains(out, "1101**********002X") || !strings.Contains(out, "张*") || strings.Contains(out, "张三") {
				t.Errorf("the decoded sample is not masked:\n%s", out)
			}
			if strings.Contains(out, "NOT RESOLVED") || strings.Contains(out, "warning") {
				t.Errorf("output:\n%s", out)
			}
		})
	}
}

func TestCheckMappingProblems(t *testing.T) {
	sorted, sm2 := shipped(t, "vendor-sorted"), shipped(t, "vendor-sm2")
	noSample := sorted[:strings.Index(sorted, "sample:")]
	keyPEM, _ := sm2Keys(t)
	tests := []struct {
		name, mapping, extra string
		files                map[string]string
		code                 int
		want                 []string
	}{
		{"unknown algorithm", "m.yaml", "", map[string]string{"m.yaml": strings.Replace(sorted, "algorithm: sha256", "algorithm: sha512", 1)},
			exitUsage, []string{"platform.mapping", "m.yaml: line 26: signing.algorithm is an unknown algorithm \"sha512\""}},
		{"a put target that does not exist", "m.yaml", "", map[string]string{"m.yaml": strings.Replace(sorted, "put: body:sign", "put: trailer:sign", 1)},
			exitUsage, []string{"line 28: signing.put"}},
		{"unknown placeholder", "m.yaml", "", map[string]string{"m.yaml": strings.Replace(sorted, "&key=${secret}", "&key=${appSecret}", 1)},
			exitUsage, []string{"line 25: signing.suffix has an unknown placeholder ${appSecret}"}},
		{"no sample: a warning", "m.yaml", "", map[string]string{"m.yaml": noSample},
			exitOK, []string{"warning: mapping vendor-sorted has no sample answer: its paths, value maps and times were not proven"}},
		{"signing section without a secret: a warning", "m.yaml", "", map[string]string{"m.yaml": sorted},
			exitOK, []string{"warning: the mapping has a signing section but platform.secret_file is not set"}},
		{"sm2 key file that does not parse", "m.yaml", "", map[string]string{
			"m.yaml":   strings.Replace(sm2, "  algorithm: sm2\n", "  algorithm: sm2\n  key_file: unit.pem\n", 1),
			"unit.pem": "-----BEGIN PRIVATE KEY-----\nMIGTAgEA\n-----END PRIVATE KEY-----\n"},
			exitUsage, []string{"line 28: signing.key_file", "does not parse"}},
		{"sm2 key in the secret file that does not parse", "m.yaml", ", app_key: a, secret_file: DIR/secret", map[string]string{"m.yaml": sm2, "secret": "a shared secret, not a key\n"},
			exitUsage, []string{"line 3: platform.secret_file", "not a PEM file"}},
		{"sm2 key that parses", "m.yaml", ", app_key: a, secret_file: DIR/secret", map[string]string{"m.yaml": sm2, "secret": keyPEM},
			exitOK, []string{"signing: sorted sm2 base64 → body:signData"}},
		{"platform.signing that contradicts", "m.yaml", ", signing: sm3-hmac", map[string]string{"m.yaml": sorted},
			exitUsage, []string{"line 3: platform.signing", "the mapping vendor-sorted signs with sha256 (signing.algorithm, line 26)"}},
		{"platform.signing written out as the default that contradicts", "m.yaml", ", signing: hmac-sha256", map[string]string{"m.yaml": sorted},
			exitUsage, []string{"line 3: platform.signing", "remove platform.signing"}},
		{"platform.signing that agrees", "m.yaml", ", signing: sm3-hmac", map[string]string{"m.yaml": shipped(t, "reference") + "signing: {algorithm: hmac-sm3, put: header:X-Signature}\n"},
			exitOK, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := checkUnit(t, tt.mapping, tt.extra, tt.files)
			code, out, errb := runCmd("check", "--config", cfg)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.code, out, errb)
			}
			for _, w := range tt.want {
				if !strings.Contains(out+errb, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, errb)
				}
			}
			if strings.Contains(out+errb, "MIGTAgEA") {
				t.Error("the output quotes the key")
			}
		})
	}
}
