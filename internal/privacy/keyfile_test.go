package privacy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/secretfile"
)

func returnsWithin(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("did not return within %s", d)
	}
}

// TestKeyFilesBounded (issue #11, finding 9): key files are read through secretfile: a FIFO
// or a device is refused at once; the hash key (a secret) must be for its owner only, the
// platform's public key may be world-readable.
func TestKeyFilesBounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, "/dev/zero"} {
		returnsWithin(t, 5*time.Second, func() {
			if _, err := LoadPublicKey(p); !errors.Is(err, secretfile.ErrNotRegular) {
				t.Errorf("LoadPublicKey(%s): %v, want ErrNotRegular", p, err)
			}
			if _, err := LoadOrCreateHashKey(p); !errors.Is(err, secretfile.ErrNotRegular) {
				t.Errorf("LoadOrCreateHashKey(%s): %v, want ErrNotRegular", p, err)
			}
		})
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v", err)
	}

	pub, _, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.key")
	os.WriteFile(open, []byte(EncodeKey(*pub)), 0o600)
	os.Chmod(open, 0o644)
	if _, err := LoadPublicKey(open); err != nil {
		t.Errorf("a 0644 public key refused: %v", err)
	}
	_, err = LoadOrCreateHashKey(open)
	if !errors.Is(err, secretfile.ErrTooOpen) || !strings.Contains(err.Error(), "chmod 600 "+open) {
		t.Errorf("a 0644 hash key: %v, want ErrTooOpen with the chmod", err)
	}
}
