package privacy

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/nacl/box"

	"github.com/sentinel-edge/sentinel/internal/secretfile"
)

// KeySize is the size of an X25519 key.
const KeySize = 32

// maxKeyFile bounds a key file: 44 characters of base64 and some white space.
const maxKeyFile = 4 << 10

// ErrKey means a key file does not hold a usable key.
var ErrKey = errors.New("privacy: bad key")

// PublicKey is the platform's X25519 public key: personal data is sealed to it, and only the
// platform, which holds the private key, can open it.
type PublicKey [KeySize]byte

// PrivateKey is an X25519 private key (the platform's; on a unit only in tests).
type PrivateKey [KeySize]byte

// ParseKey decodes a key file's content: base64 (standard, padded or not) of 32 bytes,
// surrounding white space ignored. name is used in messages; the key itself never is.
func ParseKey(name string, b []byte) ([KeySize]byte, error) {
	var k [KeySize]byte
	s := strings.TrimSpace(string(b))
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil || len(raw) != KeySize {
		return k, fmt.Errorf("%s must hold an X25519 key: 32 bytes in base64 (44 characters): %w", name, ErrKey)
	}
	copy(k[:], raw)
	if k == ([KeySize]byte{}) {
		return k, fmt.Errorf("%s holds an all-zero key: %w", name, ErrKey)
	}
	return k, nil
}

// LoadPublicKey reads the platform's public key from a file written by EncodeKey (or by
// `sentinel-sim keygen`). The key is public: the file may be readable by anyone, but it must
// be a regular file of bounded size (internal/secretfile).
func LoadPublicKey(path string) (*PublicKey, error) {
	b, err := secretfile.Read(path, secretfile.Options{Public: true, MaxSize: maxKeyFile})
	if err != nil {
		return nil, fmt.Errorf("privacy: platform key: %w", err)
	}
	k, err := ParseKey(path, b)
	if err != nil {
		return nil, fmt.Errorf("privacy: platform key: %w", err)
	}
	pk := PublicKey(k)
	return &pk, nil
}

// EncodeKey renders a key as a key file holds it: base64 and a newline.
func EncodeKey(k [KeySize]byte) string { return base64.StdEncoding.EncodeToString(k[:]) + "\n" }

// GenerateKeyPair makes a platform key pair, for provisioning and tests.
func GenerateKeyPair() (*PublicKey, *PrivateKey, error) {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("privacy: generate key pair: %w", err)
	}
	return (*PublicKey)(pub), (*PrivateKey)(priv), nil
}

// Sealed is the plaintext of a sealed subject: what the platform reads after opening it. It
// is JSON with one-letter keys (every record carries it, and on a cellular link and in a
// 400 MB outbox each byte counts): {"i":"<ID number>","n":"<name>","f":"<face JPEG, base64>"}.
type Sealed struct {
	IDNumber string `json:"i,omitempty"`
	Name     string `json:"n,omitempty"`
	Face     []byte `json:"f,omitempty"`
}

// Seal seals s to pub as an anonymous NaCl box (X25519, XSalsa20-Poly1305; an ephemeral key
// per seal, so equal subjects give unrelated ciphertexts) and returns it in base64. Only the
// holder of the private key can open it.
func Seal(pub *PublicKey, s Sealed) (string, error) {
	msg, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("privacy: seal: %w", err)
	}
	out, err := box.SealAnonymous(nil, msg, (*[KeySize]byte)(pub), rand.Reader)
	clear(msg)
	if err != nil {
		return "", fmt.Errorf("privacy: seal: %w", err)
	}
	return base64.StdEncoding.EncodeToString(out), nil
}

// Open opens a value made by Seal with the platform's key pair (the platform's side; tests).
func Open(pub *PublicKey, priv *PrivateKey, sealed string) (Sealed, error) {
	var s Sealed
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return s, fmt.Errorf("privacy: open: not base64: %w", err)
	}
	msg, ok := box.OpenAnonymous(nil, raw, (*[KeySize]byte)(pub), (*[KeySize]byte)(priv))
	if !ok {
		return s, errors.New("privacy: open: the box does not open with this key pair")
	}
	if err := json.Unmarshal(msg, &s); err != nil {
		return s, fmt.Errorf("privacy: open: %w", err)
	}
	return s, nil
}

// randReader is the randomness for new keys; a package variable so tests can swap it.
var randReader io.Reader = rand.Reader
