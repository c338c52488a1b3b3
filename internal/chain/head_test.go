package chain

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func exampleHead() Head {
	return Head{
		"passage": {Seq: 42, Hash: "9abb04bc1cbc7bcacc12560113d895bda69b39298648d0585fa8cd0f929b9048"},
		"event":   {Seq: 7, Hash: "04d9606aa134b4b9c04451978e65039e8b952cc271c3df96e344451da12f289a"},
	}
}

// The statement of the worked example in docs/records.md, and a signature any Ed25519
// implementation reproduces (Ed25519 is deterministic). Checked independently with Python's
// cryptography package.
func TestHeadStatementAndSignature(t *testing.T) {
	st, err := HeadStatement("350582-0001", "gate-01", "2026-11-25T08:00:00.000Z", exampleHead())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"device":"gate-01","head":{"event":{"hash":"04d9606aa134b4b9c04451978e65039e8b952cc271c3df96e344451da12f289a","seq":7},` +
		`"passage":{"hash":"9abb04bc1cbc7bcacc12560113d895bda69b39298648d0585fa8cd0f929b9048","seq":42}},` +
		`"ts":"2026-11-25T08:00:00.000Z","type":"sentinel-head-v1","venue":"350582-0001"}`
	if string(st) != want {
		t.Fatalf("statement\n%s\nwant\n%s", st, want)
	}
	u := &Unit{Venue: "350582-0001", Device: "gate-01", Alg: SHA256, Key: testKey()}
	sig, err := u.SignHead("2026-11-25T08:00:00.000Z", exampleHead())
	if err != nil {
		t.Fatal(err)
	}
	const wantSig = "EyE1jAvsPfxmaYPwV/dStAKlNvmUP1tViEVXuPXt0zyMHkCyAlCaa8xXERz4F3JUw+QFIsU3c/JFbmtkwVtuAw=="
	if sig != wantSig {
		t.Fatalf("signature %s, want %s", sig, wantSig)
	}
	pub := u.Key.Public().(ed25519.PublicKey)
	if !VerifyHead(pub, "350582-0001", "gate-01", "2026-11-25T08:00:00.000Z", exampleHead(), sig) {
		t.Fatal("the signature does not verify")
	}
	// Anything changed, and it does not.
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)).Public().(ed25519.PublicKey)
	h2 := exampleHead()
	h2["passage"] = StreamHead{Seq: 41, Hash: h2["passage"].Hash}
	for name, ok := range map[string]bool{
		"key":    VerifyHead(other, "350582-0001", "gate-01", "2026-11-25T08:00:00.000Z", exampleHead(), sig),
		"venue":  VerifyHead(pub, "350582-0002", "gate-01", "2026-11-25T08:00:00.000Z", exampleHead(), sig),
		"device": VerifyHead(pub, "350582-0001", "gate-02", "2026-11-25T08:00:00.000Z", exampleHead(), sig),
		"ts":     VerifyHead(pub, "350582-0001", "gate-01", "2026-11-25T08:00:00.001Z", exampleHead(), sig),
		"seq":    VerifyHead(pub, "350582-0001", "gate-01", "2026-11-25T08:00:00.000Z", h2, sig),
		"sig":    VerifyHead(pub, "350582-0001", "gate-01", "2026-11-25T08:00:00.000Z", exampleHead(), "x"+sig[1:]),
		"junk":   VerifyHead(pub, "350582-0001", "gate-01", "2026-11-25T08:00:00.000Z", exampleHead(), "!!"),
	} {
		if ok {
			t.Errorf("another %s still verifies", name)
		}
	}
}

func TestSignHeadRefuses(t *testing.T) {
	k := testKey()
	for _, h := range []Head{
		{"": {Seq: 1, Hash: strings.Repeat("0", 64)}},
		{"passage": {Seq: 0, Hash: strings.Repeat("0", 64)}},
		{"passage": {Seq: 1, Hash: strings.Repeat("A", 64)}},
		{"passage": {Seq: 1, Hash: "abc"}},
	} {
		if _, err := SignHead(k, "v", "d", "t", h); !errors.Is(err, ErrHead) {
			t.Errorf("SignHead(%v) = %v, want ErrHead", h, err)
		}
	}
	if _, err := SignHead(k[:10], "v", "d", "t", nil); !errors.Is(err, ErrKey) {
		t.Errorf("short key: %v", err)
	}
	// An empty head (a unit with no record yet) is signable.
	sig, err := SignHead(k, "v", "d", "t", nil)
	if err != nil || !VerifyHead(k.Public().(ed25519.PublicKey), "v", "d", "t", Head{}, sig) {
		t.Errorf("empty head: %v", err)
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "chain.key")
	priv, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	again, created, err := LoadOrCreateKey(path)
	if err != nil || created || !again.Equal(priv) {
		t.Fatalf("reload: %v %v", created, err)
	}
	// provision keeps an existing key, and replaces it only when asked.
	pub := EncodePublicKey(priv.Public().(ed25519.PublicKey))
	kept, pemOut, err := ProvisionKey(path, false)
	if err != nil || pemOut != nil || kept != pub {
		t.Fatalf("provision keep: %v", err)
	}
	fresh, pemOut, err := ProvisionKey(path, true)
	if err != nil || pemOut == nil || fresh == pub {
		t.Fatalf("provision replace: %v", err)
	}
	if k, err := ParsePrivateKey("x", pemOut); err != nil || EncodePublicKey(k.Public().(ed25519.PublicKey)) != fresh {
		t.Fatalf("round trip: %v", err)
	}
	_, pemOut, err = ProvisionKey(filepath.Join(dir, "none.key"), false)
	if err != nil || pemOut == nil {
		t.Fatalf("provision new: %v", err)
	}

	// Hostile and damaged files: named, refused, left alone.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(path); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "0600") {
		t.Errorf("readable by others: %v", err)
	}
	if _, _, err := ProvisionKey(path, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("provision over a bad key file: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("not a key\n"), 0o600)
	if _, _, err := LoadOrCreateKey(bad); !errors.Is(err, ErrKey) {
		t.Errorf("garbage: %v", err)
	}
	if b, _ := os.ReadFile(bad); string(b) != "not a key\n" {
		t.Error("a bad key file was changed")
	}
	big := filepath.Join(dir, "big.key")
	os.WriteFile(big, bytes.Repeat([]byte("A"), maxKeyFile+1), 0o600)
	if _, err := LoadKey(big); !errors.Is(err, ErrKey) {
		t.Errorf("oversized: %v", err)
	}
	if _, err := LoadKey(dir); !errors.Is(err, ErrKey) {
		t.Errorf("a directory: %v", err)
	}
	fifo := filepath.Join(dir, "fifo.key")
	if err := syscall.Mkfifo(fifo, 0o600); err == nil {
		if _, err := LoadKey(fifo); !errors.Is(err, ErrKey) { // must not hang
			t.Errorf("a FIFO: %v", err)
		}
	}
	if _, err := LoadKey(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	if _, err := LoadKey("/dev/zero"); !errors.Is(err, ErrKey) {
		t.Errorf("/dev/zero: %v", err)
	}
}

func TestPublicKeys(t *testing.T) {
	pub := testKey().Public().(ed25519.PublicKey)
	b64 := EncodePublicKey(pub)
	for _, s := range []string{b64, strings.TrimRight(b64, "="), "  " + b64 + "\n", "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"} {
		k, err := ParsePublicKey(s)
		if err != nil || !k.Equal(pub) {
			t.Errorf("ParsePublicKey(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "abc", b64[:40], strings.Repeat("A", 43) + "=", strings.Repeat("00", 32)} {
		if _, err := ParsePublicKey(s); !errors.Is(err, ErrKey) {
			t.Errorf("ParsePublicKey(%q) accepted", s)
		}
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "gate-01.pub")
	os.WriteFile(f, []byte("# old key\n"+EncodePublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32)).Public().(ed25519.PublicKey))+"\n\n"+b64+"\n"), 0o644)
	keys, err := LoadPublicKeys(f)
	if err != nil || len(keys) != 2 || !keys[1].Equal(pub) {
		t.Fatalf("LoadPublicKeys: %v %v", keys, err)
	}
	os.WriteFile(f, []byte("# none\n"), 0o644)
	if _, err := LoadPublicKeys(f); !errors.Is(err, ErrKey) {
		t.Errorf("no key: %v", err)
	}
	os.WriteFile(f, []byte(b64+"\nzzz\n"), 0o644)
	if _, err := LoadPublicKeys(f); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), ":2:") {
		t.Errorf("bad line: %v", err)
	}
}
