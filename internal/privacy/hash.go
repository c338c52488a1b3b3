package privacy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sentinel-edge/sentinel/internal/secretfile"
)

// HashKeyFile is the name of the device-local hash key, created beside the queue database.
const HashKeyFile = "subject-hash.key"

// KeyedHash returns the look-up hash of an ID number: HMAC-SHA256 under the device-local key
// of the ID number (trimmed, upper case), truncated to 128 bits, in hex (32 characters).
// Without the key it cannot be computed, so it cannot be reversed by trying every ID
// number; with it, the same ID number always gives the same hash on this unit.
func KeyedHash(key []byte, idNumber string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.ToUpper(strings.TrimSpace(idNumber))))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// LoadOrCreateHashKey reads the device-local hash key at path, creating it (32 random bytes,
// base64, mode 0600, written to a temporary file, synced and renamed into place) when it does
// not exist. The key is a secret: an existing file must be a regular file of bounded size
// that only its owner may access (internal/secretfile; the error gives the chmod). An existing
// file that does not hold a key is an error naming it, and is left as it is.
func LoadOrCreateHashKey(path string) ([]byte, error) {
	b, err := secretfile.Read(path, secretfile.Options{MaxSize: maxKeyFile})
	if err == nil {
		k, err := ParseKey(path, b)
		if err != nil {
			return nil, fmt.Errorf("privacy: hash key: %w; move it aside to have a new key made (look-up hashes change)", err)
		}
		return k[:], nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("privacy: hash key: %w", err)
	}
	var k [KeySize]byte
	if _, err := io.ReadFull(randReader, k[:]); err != nil {
		return nil, fmt.Errorf("privacy: hash key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".hash-key-*")
	if err != nil {
		return nil, fmt.Errorf("privacy: hash key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("privacy: hash key: %w", err)
	}
	if _, err := tmp.WriteString(EncodeKey(k)); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("privacy: hash key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("privacy: hash key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("privacy: hash key: %w", err)
	}
	// Link rather than rename: if another process created the key meanwhile, keep its key.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreateHashKey(path)
		}
		return nil, fmt.Errorf("privacy: hash key: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return k[:], nil
}
