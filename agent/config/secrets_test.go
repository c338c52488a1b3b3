package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckSecret(t *testing.T) {
	for _, tt := range []struct {
		secret string
		ok     bool
	}{
		{"", false}, {"  \n", false}, {"changeme", false}, {"ChangeMe\n", false}, {"SECRET", false},
		{"please-change-this-value", false}, {"123456", false},
		{"k3Jd8sPq0ZxV2mW9tY4uB7nR", true}, {"short-but-real", true},
	} {
		err := CheckSecret([]byte(tt.secret))
		if (err == nil) != tt.ok {
			t.Errorf("secret #%d (%d chars): err %v, want ok=%v", len(tt.secret), len(tt.secret), err, tt.ok)
		}
		if s := strings.TrimSpace(tt.secret); err != nil && s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("the error repeats the secret: %v", err)
		}
	}
}

func TestCheckProvisioned(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("k3Jd8sPq0ZxV2mW9tY4uB7nR\n"), 0o600)
	def := filepath.Join(dir, "default")
	os.WriteFile(def, []byte("changeme\n"), 0o600)
	key := filepath.Join(dir, "platform.pub")
	os.WriteFile(key, []byte("not a key\n"), 0o644)
	base := func() *Config {
		return &Config{Device: Device{ID: "gate-07", Venue: "350582-0001"}}
	}
	tests := []struct {
		name string
		mod  func(c *Config)
		want []string // keys named, in order
	}{
		{"demo style, no secrets", func(c *Config) {}, nil},
		{"good secret", func(c *Config) { c.Platform.SecretFile = good }, nil},
		{"placeholder identity", func(c *Config) { c.Device.ID = Unprovisioned; c.Device.Venue = UnprovisionedVenue }, []string{"device.id", "device.venue"}},
		{"default secret", func(c *Config) { c.Platform.SecretFile = def }, []string{"platform.secret_file"}},
		{"missing secret", func(c *Config) { c.Uplink.PasswordFile = filepath.Join(dir, "none") }, []string{"uplink.password_file"}},
		{"empty client key", func(c *Config) {
			e := filepath.Join(dir, "empty.key")
			os.WriteFile(e, nil, 0o600)
			c.Uplink.TLS.KeyFile = e
		}, []string{"uplink.tls.key_file"}},
		{"bad platform key", func(c *Config) { c.Privacy.PlatformKeyFile = key }, []string{"privacy.platform_key_file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mod(c)
			ps := CheckProvisioned(c)
			var keys []string
			for _, p := range ps {
				keys = append(keys, p.Key)
			}
			if strings.Join(keys, ",") != strings.Join(tt.want, ",") {
				t.Errorf("problems %v, want keys %v", ps, tt.want)
			}
			for _, p := range ps {
				if strings.Contains(p.Msg, "changeme") {
					t.Errorf("problem repeats the secret: %s", p)
				}
			}
		})
	}
}

func TestStringAtAndHasKey(t *testing.T) {
	c := &Config{}
	c.Platform.SecretFile = "/x"
	if v, ok := c.StringAt("platform.secret_file"); !ok || v != "/x" {
		t.Errorf("StringAt(platform.secret_file) = %q, %v", v, ok)
	}
	if v, ok := c.StringAt("scanners.qr.port"); !ok || v != "" {
		t.Errorf("a known key under a nil section: %q, %v", v, ok)
	}
	if _, ok := c.StringAt("platform.no_such_key"); ok {
		t.Error("an unknown key is reported known")
	}
	if !HasKey("uplink.tls.ca_file") || HasKey("uplink.tls") == false || HasKey("device.id.x") {
		t.Error("HasKey is wrong")
	}
}
