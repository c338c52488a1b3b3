package chain

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenUnit: the key is created (0600) only when the caller may create it; a missing key
// the config names is an error; a bad algorithm is refused.
func TestOpenUnit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chain.key")
	if _, _, err := OpenUnit("v", "d", "sha256", path, false); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a missing key without create: %v", err)
	}
	u, created, err := OpenUnit("v", "d", "sm3", path, true)
	if err != nil || !created || u.Alg != SM3 {
		t.Fatalf("create: %+v %v %v", u, created, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v", fi, err)
	}
	again, created, err := OpenUnit("v", "d", "sha256", path, false)
	if err != nil || created || !again.Key.Equal(u.Key) {
		t.Fatalf("reopen: %v %v", created, err)
	}
	if _, _, err := OpenUnit("v", "d", "md5", path, true); !errors.Is(err, ErrAlg) {
		t.Fatalf("md5: %v", err)
	}
}

type headsFunc func(context.Context) (Head, error)

func (f headsFunc) Heads(ctx context.Context) (Head, error) { return f(ctx) }

// TestStatusHead: the hook signs the head with the status' ts; a head that cannot be read
// leaves the status without one (the key still named) and is reported once per run.
func TestStatusHead(t *testing.T) {
	u := &Unit{Venue: "v", Device: "d", Alg: SHA256, Key: ed25519.NewKeyFromSeed(make([]byte, 32))}
	var fail error
	want := Head{"passage": NewStreamHead(3, make([]byte, HashSize))}
	fails := 0
	hook := u.StatusHead(headsFunc(func(context.Context) (Head, error) { return want, fail }), func(error) { fails++ })
	h, sig, key := hook(context.Background(), "2026-11-25T08:00:05.000Z")
	if key != u.PublicKey() || !VerifyHead(u.Key.Public().(ed25519.PublicKey), "v", "d", "2026-11-25T08:00:05.000Z", h, sig) || h["passage"].Seq != 3 {
		t.Fatalf("head %v sig %q key %q", h, sig, key)
	}
	fail = errors.New("closed")
	for range 3 {
		if h, sig, key := hook(context.Background(), "t"); h != nil || sig != "" || key != u.PublicKey() {
			t.Fatalf("failing: %v %q %q", h, sig, key)
		}
	}
	if fails != 1 {
		t.Fatalf("onFail called %d times, want once per run", fails)
	}
}
