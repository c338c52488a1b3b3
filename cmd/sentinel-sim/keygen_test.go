package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentinel-edge/sentinel/internal/privacy"
)

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	pub, priv := filepath.Join(dir, "platform.pub"), filepath.Join(dir, "platform.key")
	var out, errb bytes.Buffer
	e := env{stdout: &out, stderr: &errb}
	if code := run(context.Background(), []string{"keygen", "--public", pub, "--private", priv}, e); code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errb.String())
	}
	pk, err := privacy.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(priv)
	sk, err := privacy.ParseKey(priv, b)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(priv); fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v, want 0600", fi.Mode())
	}
	sealed, _ := privacy.Seal(pk, privacy.Sealed{Name: "x"})
	k := privacy.PrivateKey(sk)
	if got, err := privacy.Open(pk, &k, sealed); err != nil || got.Name != "x" {
		t.Fatalf("the pair does not open its own seal: %v", err)
	}
	before, _ := os.ReadFile(pub)
	errb.Reset()
	if code := run(context.Background(), []string{"keygen", "--public", pub, "--private", filepath.Join(dir, "other.key")}, e); code != 1 ||
		!strings.Contains(errb.String(), "exists") {
		t.Fatalf("overwrite: exit %d, %s", code, errb.String())
	}
	if after, _ := os.ReadFile(pub); !bytes.Equal(before, after) {
		t.Fatal("an existing public key was overwritten")
	}
	if _, err := os.Stat(filepath.Join(dir, "other.key")); err == nil {
		t.Fatal("a private key was left without its public key")
	}
	if code := run(context.Background(), []string{"keygen"}, e); code != 2 {
		t.Fatalf("no flags: exit %d, want 2", code)
	}
}
