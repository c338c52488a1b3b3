package privacy

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	pub, priv, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	in := Sealed{IDNumber: "350582199001011237", Name: "张三丰"}
	a, err := Seal(pub, in)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Seal(pub, in)
	if a == b {
		t.Fatal("two seals of the same subject are equal: the ephemeral key is not fresh")
	}
	if strings.Contains(a, "350582") || regexp.MustCompile(`\d{17}[\dX]`).MatchString(a) {
		t.Fatal("the sealed value shows the ID number")
	}
	got, err := Open(pub, priv, a)
	if err != nil || got.IDNumber != in.IDNumber || got.Name != in.Name {
		t.Fatalf("Open = %s/%s, %v", MaskID(got.IDNumber), MaskName(got.Name), err)
	}
	otherPub, otherPriv, _ := GenerateKeyPair()
	if _, err := Open(otherPub, otherPriv, a); err == nil {
		t.Fatal("opened with another key pair")
	}
}

func TestLoadPublicKey(t *testing.T) {
	dir := t.TempDir()
	pub, _, _ := GenerateKeyPair()
	good := filepath.Join(dir, "platform.pub")
	os.WriteFile(good, []byte(EncodeKey(*pub)), 0o644)
	k, err := LoadPublicKey(good)
	if err != nil || *k != *pub {
		t.Fatalf("LoadPublicKey: %v", err)
	}
	tests := []struct{ name, content string }{
		{"empty", ""},
		{"short", "AAAA"},
		{"not base64", "this is not a key at all, no, it is not!!!!"},
		{"zero", EncodeKey([32]byte{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			os.WriteFile(p, []byte(tt.content), 0o644)
			_, err := LoadPublicKey(p)
			if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err = %v, want ErrKey naming %s", err, p)
			}
		})
	}
	if _, err := LoadPublicKey(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestHashKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), HashKeyFile)
	k1, err := LoadOrCreateHashKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode(), err)
	}
	k2, err := LoadOrCreateHashKey(path)
	if err != nil || string(k1) != string(k2) {
		t.Fatalf("second load gave another key (%v)", err)
	}
	h := KeyedHash(k1, "11010519491231002x")
	if h != KeyedHash(k1, " 11010519491231002X ") || len(h) != 32 {
		t.Fatalf("hash %q not normalised or not 32 hex characters", h)
	}
	if h == KeyedHash([]byte("another key"), "11010519491231002X") {
		t.Fatal("the hash does not depend on the key")
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, err := LoadOrCreateHashKey(path); !errors.Is(err, ErrKey) {
		t.Fatalf("garbage key file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "garbage" {
		t.Fatal("a bad key file was overwritten")
	}
}
