package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strings"

	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/internal/secretfile"
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

// PublicFileKeys are the config keys that name a file the unit reads that holds no secret
// (a user name, a certificate, the platform's public key): it may be readable by anyone, but
// like a secret file it must be a regular file of bounded size.
var PublicFileKeys = []string{
	"uplink.username_file",
	"uplink.tls.ca_file",
	"uplink.tls.cert_file",
	PlatformKeyKey,
}

// MaxPublicFileSize bounds a public file: a CA bundle (the system's is about 200 KiB) fits.
const MaxPublicFileSize = 1 << 20

// HashKeyKey names the device-local hash key: a secret that the daemon creates (mode 0600)
// when it does not exist yet.
const HashKeyKey = "privacy.hash_key_file"

// CheckProvisioned reports what keeps this config from going live: a device id that was
// never set; a secret file that is missing, not a regular file, too large, open to group or
// others (the problem gives the chmod), empty or a default placeholder; a public file
// (PublicFileKeys) that is missing, not a regular file or too large; a platform key that is
// not an X25519 public key. Files are read with internal/secretfile: a FIFO or a device
// never blocks or floods it. The demo (no secret files) passes.
func CheckProvisioned(c *Config) []Problem {
	var ps []Problem
	if c.Device.ID == Unprovisioned {
		ps = append(ps, Problemf("device.id", "is %q: this unit was never provisioned; run sentinel provision", Unprovisioned))
	}
	if c.Device.Venue == UnprovisionedVenue {
		ps = append(ps, Problemf("device.venue", "is the placeholder %q: run sentinel provision with the venue's code", UnprovisionedVenue))
	}
	for _, key := range SecretKeys {
		if p, bad := checkSecretFile(c, key); bad {
			ps = append(ps, p)
		}
	}
	for _, key := range PublicFileKeys {
		if p, bad := checkPublicFile(c, key); bad {
			ps = append(ps, p)
		}
	}
	if path, ok := c.StringAt(HashKeyKey); ok && path != "" {
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			if _, err := secretfile.Read(path, secretfile.Options{}); err != nil {
				ps = append(ps, fileProblem(HashKeyKey, err, "move it aside to have the daemon make a new one (look-up hashes change)"))
			}
		}
	}
	return ps
}

// checkSecretFile checks the secret file named by key, when this build has the key and it
// is set.
func checkSecretFile(c *Config, key string) (Problem, bool) {
	path, ok := c.StringAt(key)
	if !ok || path == "" {
		return Problem{}, false
	}
	b, err := secretfile.ReadSecret(path, secretfile.Options{})
	switch {
	case key == "uplink.tls.key_file" && errors.Is(err, secretfile.ErrEmpty):
		return Problemf(key, "%s is empty: run sentinel provision to create the client key", path), true
	case err != nil:
		return fileProblem(key, err, "put the secret the platform issued for this unit there (sentinel provision does)"), true
	case key == "uplink.tls.key_file":
		return Problem{}, false
	}
	if err := CheckSecret(b); err != nil {
		return Problemf(key, "the secret in %s %s: put the secret the platform issued for this unit there (sentinel provision does)", path, err), true
	}
	return Problem{}, false
}

// checkPublicFile checks the public file named by key, when this build has the key and it
// is set; the platform key must hold an X25519 public key.
func checkPublicFile(c *Config, key string) (Problem, bool) {
	path, ok := c.StringAt(key)
	if !ok || path == "" {
		return Problem{}, false
	}
	b, err := secretfile.Read(path, secretfile.Options{Public: true, MaxSize: MaxPublicFileSize})
	if err != nil {
		fix := "point it at the file provisioning wrote"
		if key == PlatformKeyKey {
			fix = "put the platform's public key there (sentinel provision --platform-key)"
		}
		return fileProblem(key, err, fix), true
	}
	if key == PlatformKeyKey {
		if _, err := privacy.ParseKey(path, b); err != nil {
			return Problemf(key, "%v: put the platform's public key there (sentinel provision --platform-key)", err), true
		}
	}
	return Problem{}, false
}

// fileProblem is a secretfile error as a problem of key: the error's own words (the path,
// what is wrong, the chmod to run), then what to do unless the error already says it.
func fileProblem(key string, err error, fix string) Problem {
	msg := strings.TrimPrefix(err.Error(), "secretfile: ")
	if errors.Is(err, secretfile.ErrTooOpen) {
		return Problemf(key, "%s", msg)
	}
	return Problemf(key, "%s: %s", msg, fix)
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
