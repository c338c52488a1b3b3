package config

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/sentinel-edge/sentinel/internal/privacy"
)

// Provisioning: a unit goes live only with its own identity and secrets. Secrets live in
// files named by config keys; these checks read them, so they run where the files are (at
// `sentinel run`, `sentinel selftest` and `sentinel provision`), not in `sentinel check`,
// which validates the file alone.

// Unprovisioned is the device.id of the config the package ships: a unit that still has it
// was never provisioned.
const Unprovisioned = "unprovisioned"

// UnprovisionedVenue is the device.venue of the config the package ships.
const UnprovisionedVenue = "000000-0000"

// SecretKeys are the config keys that name a file holding a secret. A key this build does
// not have (its section lands later) is skipped.
var SecretKeys = []string{
	"platform.secret_file",
	"uplink.password_file",
	"uplink.tls.key_file",
}

// PlatformKeyKey names the file with the platform's public key for sealing (X25519, base64).
const PlatformKeyKey = "privacy.platform_key_file"

// defaultSecrets are placeholder values seen in templates and examples, compared without
// case and surrounding space; a secret that is one of them, or contains "change", is a
// default that was never replaced.
var defaultSecrets = []string{
	"secret", "password", "passwd", "default", "example", "test", "admin", "sentinel",
	"123456", "12345678", "changeme", "change-me", "change_me", "replace-me", "xxxxxx", "todo",
}

// MinSecretLen is the shortest secret sentinel provision accepts.
const MinSecretLen = 16

// CheckSecret says what is wrong with a secret value: empty, or a default placeholder.
// It never repeats the secret.
func CheckSecret(b []byte) error {
	s := strings.ToLower(string(bytes.TrimSpace(b)))
	if s == "" {
		return fmt.Errorf("is empty")
	}
	for _, d := range defaultSecrets {
		if s == d {
			return fmt.Errorf("is a default placeholder (%d characters), not a real secret", len(s))
		}
	}
	if strings.Contains(s, "change") {
		return fmt.Errorf("still holds the placeholder text (it contains \"change\")")
	}
	return nil
}

// CheckProvisioned reports what keeps this config from going live: a device id that was
// never set, a secret file that is missing, unreadable, empty or a default placeholder, or a
// platform key that is not an X25519 public key. The demo (no secret files) passes.
func CheckProvisioned(c *Config) []Problem {
	var ps []Problem
	if c.Device.ID == Unprovisioned {
		ps = append(ps, Problemf("device.id", "is %q: this unit was never provisioned; run sentinel provision", Unprovisioned))
	}
	if c.Device.Venue == UnprovisionedVenue {
		ps = append(ps, Problemf("device.venue", "is the placeholder %q: run sentinel provision with the venue's code", UnprovisionedVenue))
	}
	for _, key := range SecretKeys {
		path, ok := c.StringAt(key)
		if !ok || path == "" {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			ps = append(ps, Problemf(key, "cannot read %s: %s", path, unwrapPathErr(err)))
			continue
		}
		if key == "uplink.tls.key_file" {
			if len(bytes.TrimSpace(b)) == 0 {
				ps = append(ps, Problemf(key, "%s is empty: run sentinel provision to create the client key", path))
			}
			continue
		}
		if err := CheckSecret(b); err != nil {
			ps = append(ps, Problemf(key, "the secret in %s %s: put the secret the platform issued for this unit there (sentinel provision does)", path, err))
		}
	}
	if path, ok := c.StringAt(PlatformKeyKey); ok && path != "" {
		b, err := os.ReadFile(path)
		if err == nil {
			_, err = privacy.ParseKey(path, b)
		} else {
			err = fmt.Errorf("cannot read %s: %s", path, unwrapPathErr(err))
		}
		if err != nil {
			ps = append(ps, Problemf(PlatformKeyKey, "%v: put the platform's public key there (sentinel provision --platform-key)", err))
		}
	}
	return ps
}

// StringAt returns the string value at a dotted key (e.g. platform.secret_file) and whether
// this build has that key. Keys are the YAML names; pointers on the way may be nil.
func (c *Config) StringAt(key string) (string, bool) {
	v, known := c.lookup(key)
	if !known {
		return "", false
	}
	if v.IsValid() && v.Kind() == reflect.String {
		return v.String(), true
	}
	return "", true
}

// HasKey says whether this build knows the dotted key.
func HasKey(key string) bool {
	t := reflect.TypeOf(Config{})
	for _, part := range strings.Split(key, ".") {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return false
		}
		f, ok := fieldByTag(t, part)
		if !ok {
			return false
		}
		t = f.Type
	}
	return true
}

func (c *Config) lookup(key string) (reflect.Value, bool) {
	if !HasKey(key) {
		return reflect.Value{}, false
	}
	v := reflect.ValueOf(c).Elem()
	for _, part := range strings.Split(key, ".") {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, true // known key, absent section
			}
			v = v.Elem()
		}
		f, _ := fieldByTag(v.Type(), part)
		v = v.FieldByIndex(f.Index)
	}
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return reflect.Value{}, true
		}
		v = v.Elem()
	}
	return v, true
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if strings.Split(f.Tag.Get("yaml"), ",")[0] == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
