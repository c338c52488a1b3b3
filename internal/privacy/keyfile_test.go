package privacy

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/secretfile"
	"github.com/sentinel-edge/sentinel/internal/secretfile/secretfiletest"
)

// TestKeyFilesBounded (issue #11, finding 9): key files are read through secretfile: a FIFO
// or a device is refused at once; the hash key (a secret) must be for its owner only, the
// platform's public key may be world-readable.
func TestKeyFilesBounded(t *testing.T) {
	fifo := secretfiletest.FIFO(t)
	for _, p := range []string{fifo, "/dev/zero"} {
		secretfiletest.Within(t, 5*time.Second, func() {
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
	open := secretfiletest.File(t, "open.key", EncodeKey(*pub), 0o644)
	if _, err := LoadPublicKey(open); err != nil {
		t.Errorf("a 0644 public key refused: %v", err)
	}
	_, err = LoadOrCreateHashKey(open)
	if !errors.Is(err, secretfile.ErrTooOpen) || !strings.Contains(err.Error(), "chmod 600 "+open) {
		t.Errorf("a 0644 hash key: %v, want ErrTooOpen with the chmod", err)
	}
}
