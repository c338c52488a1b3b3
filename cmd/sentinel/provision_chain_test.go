package main

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentinel-edge/sentinel/internal/chain"
)

// provision makes the unit's record-signing key (docs/records.md): secrets/chain.key, mode
// 0600, and chain.pub beside the config; the public key is printed for the platform. A second
// run keeps the key; --force replaces it; a key file others can read is refused, untouched.
func TestProvisionChainKey(t *testing.T) {
	in := newProvisionInputs(t)
	var out, errb bytes.Buffer
	if code := run(in.args("--ca-key", in.caKey), &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	keyPath, pubPath := filepath.Join(in.out, "secrets/chain.key"), filepath.Join(in.out, "chain.pub")
	for path, mode := range map[string]os.FileMode{keyPath: 0o600, pubPath: 0o644} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
			t.Fatalf("%s: %v, mode %v; want %#o", path, err, fi, mode)
		}
	}
	priv, err := chain.LoadKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	pub := chain.EncodePublicKey(priv.Public().(ed25519.PublicKey))
	keys, err := chain.LoadPublicKeys(pubPath)
	if err != nil || len(keys) != 1 || chain.EncodePublicKey(keys[0]) != pub {
		t.Fatalf("chain.pub does not hold the key's public half: %v", err)
	}
	if !strings.Contains(out.String(), "chain key: "+pub) {
		t.Errorf("the public key is not in the output:\n%s", out.String())
	}
	pem1, _ := os.ReadFile(keyPath)
	if strings.Contains(out.String()+errb.String(), strings.TrimSpace(string(pem1))[30:60]) {
		t.Error("provision printed the private key")
	}

	out.Reset()
	if code := run(in.args("--ca-key", in.caKey), &out, &errb); code != exitOK || !strings.Contains(out.String(), "chain key: "+pub) {
		t.Fatalf("second run: exit %d: %s%s", code, out.String(), errb.String())
	}
	if pem2, _ := os.ReadFile(keyPath); !bytes.Equal(pem1, pem2) {
		t.Error("a second provision replaced the chain key without --force")
	}
	if code := run(in.args("--ca-key", in.caKey, "--force"), &out, &errb); code != exitOK {
		t.Fatalf("--force: exit %d: %s", code, errb.String())
	}
	pem3, _ := os.ReadFile(keyPath)
	if bytes.Equal(pem1, pem3) {
		t.Error("--force kept the old chain key")
	}

	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run(in.args("--ca-key", in.caKey), &out, &errb); code != exitFailure || !strings.Contains(errb.String(), keyPath) ||
		!strings.Contains(errb.String(), "0600") {
		t.Errorf("a readable key file: exit %d: %s", code, errb.String())
	}
	if pem4, _ := os.ReadFile(keyPath); !bytes.Equal(pem3, pem4) {
		t.Error("a refused provision changed the key file")
	}
}
