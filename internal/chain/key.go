package chain

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Key files. The private key is PKCS #8 in PEM ("PRIVATE KEY"; `openssl pkey -in FILE
// -pubout` reads it), mode 0600; the public key file holds base64 of its 32 bytes and a
// newline.
const (
	maxKeyFile = 16 << 10
	pemType    = "PRIVATE KEY"
)

// randReader is the source of new keys; tests may replace it.
var randReader io.Reader = rand.Reader

// GenerateKey makes a new Ed25519 signing key.
func GenerateKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(randReader)
	if err != nil {
		return nil, fmt.Errorf("chain: new key: %w", err)
	}
	return priv, nil
}

// MarshalPrivateKey returns the key file's content for priv.
func MarshalPrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("chain: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), nil
}

// ParsePrivateKey reads a key file's content; name is used in messages, the key never is.
func ParsePrivateKey(name string, b []byte) (ed25519.PrivateKey, error) {
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != pemType || len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("%s must hold one PEM %q block (an Ed25519 key in PKCS #8): %w", name, pemType, ErrKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", name, err, ErrKey)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s holds a %T, not an Ed25519 key: %w", name, k, ErrKey)
	}
	return priv, nil
}

// LoadKey reads the unit's signing key. The file must be a regular file of at most 16 KiB
// that only its owner may read (mode 0600 or 0400).
func LoadKey(path string) (ed25519.PrivateKey, error) {
	b, err := readFile(path, true)
	if err != nil {
		return nil, err
	}
	return ParsePrivateKey(path, b)
}

// ProvisionKey returns the public key (as EncodePublicKey writes it) of the signing key for
// `sentinel provision`: the one at path, kept (pemOut nil: nothing to write), or a new one
// (pemOut: the file to write, mode 0600) when there is none or replace is set. An existing
// file that is not a key is an error naming it.
func ProvisionKey(path string, replace bool) (pub string, pemOut []byte, err error) {
	if !replace {
		priv, err := LoadKey(path)
		if err == nil {
			return EncodePublicKey(priv.Public().(ed25519.PublicKey)), nil, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", nil, fmt.Errorf("%w; move it aside or use --force to make a new key (the platform must then be given the new public key)", err)
		}
	}
	priv, err := GenerateKey()
	if err != nil {
		return "", nil, err
	}
	pemOut, err = MarshalPrivateKey(priv)
	return EncodePublicKey(priv.Public().(ed25519.PublicKey)), pemOut, err
}

// LoadOrCreateKey reads the signing key at path, creating it (mode 0600, written to a
// temporary file, synced and linked into place, never over another) when it does not exist;
// created says which. An existing file that is not a key is an error and is left alone.
func LoadOrCreateKey(path string) (priv ed25519.PrivateKey, created bool, err error) {
	priv, err = LoadKey(path)
	if !errors.Is(err, os.ErrNotExist) {
		return priv, false, err
	}
	if priv, err = GenerateKey(); err != nil {
		return nil, false, err
	}
	b, err := MarshalPrivateKey(priv)
	if err != nil {
		return nil, false, err
	}
	if err := writeNew(path, b, 0o600); err != nil {
		if errors.Is(err, os.ErrExist) { // made meanwhile by another process: use that one
			priv, err = LoadKey(path)
			return priv, false, err
		}
		return nil, false, err
	}
	return priv, true, nil
}

// writeNew writes data to path, which must not exist, through a synced temporary file.
func writeNew(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".chain-key-*")
	if err != nil {
		return fmt.Errorf("chain: key %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(mode)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("chain: key %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// readFile reads a small key file safely: opened without blocking (a FIFO does not hang
// it), a regular file, at most maxKeyFile bytes, and for a secret readable by its owner
// only. (A local reader until internal/secretfile lands.)
func readFile(path string, secret bool) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("chain: key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("chain: key: %w", err)
	}
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("chain: key %s is not a regular file (%s): %w", path, fi.Mode().Type(), ErrKey)
	case fi.Size() > maxKeyFile:
		return nil, fmt.Errorf("chain: key %s has %d bytes, a key file at most %d: %w", path, fi.Size(), maxKeyFile, ErrKey)
	case secret && fi.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("chain: key %s has mode %#o: others may read it; it must be 0600 or 0400 (chmod 600 %s): %w",
			path, fi.Mode().Perm(), path, ErrKey)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("chain: key %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("chain: key %s grew past %d bytes: %w", path, maxKeyFile, ErrKey)
	}
	return b, nil
}

// EncodePublicKey writes pub as the status' chain_key and key files hold it: base64
// (standard, padded) of its 32 bytes.
func EncodePublicKey(pub ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(pub) }

// ParsePublicKey reads a public key written as EncodePublicKey writes it (also unpadded
// base64, or 64 hex digits, as commands.operator_keys accepts).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	var raw []byte
	var err error
	if len(s) == 2*ed25519.PublicKeySize {
		raw, err = hex.DecodeString(s)
	} else if raw, err = base64.StdEncoding.DecodeString(s); err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: a public key is 32 bytes in base64 (44 characters) or hex", ErrKey)
	}
	if bytes.Equal(raw, make([]byte, ed25519.PublicKeySize)) {
		return nil, fmt.Errorf("%w: an all-zero public key", ErrKey)
	}
	return ed25519.PublicKey(raw), nil
}

// LoadPublicKeys reads a public key file: one key per line (a unit's keys over time, the
// newest last); blank lines and lines starting with # are skipped.
func LoadPublicKeys(path string) ([]ed25519.PublicKey, error) {
	b, err := readFile(path, false)
	if err != nil {
		return nil, err
	}
	var keys []ed25519.PublicKey
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := ParsePublicKey(line)
		if err != nil {
			return nil, fmt.Errorf("chain: %s:%d: %w", path, n+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("chain: %s holds no public key: %w", path, ErrKey)
	}
	return keys, nil
}
