package verify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"

	"github.com/sentinel-edge/sentinel/internal/secretfile"
)

// Signing algorithms (platform.signing).
const (
	SignHMACSHA256 = "hmac-sha256"
	SignSM3HMAC    = "sm3-hmac"
)

// SigningAlgorithms lists the algorithms a Signer supports.
var SigningAlgorithms = []string{SignHMACSHA256, SignSM3HMAC}

// ErrSigning is wrapped by signer set-up failures.
var ErrSigning = errors.New("verify: signing")

// Signer holds what a unit signs its requests with: the app key, the secret and, for a
// mapping's sm2 scheme, the private key. How it signs is the mapping's: its signing section
// (scheme.go, request.go), or without one the reference scheme: an app key, a timestamp and
// a nonce in headers, and a signature over the canonical string
//
//	METHOD \n PATH \n APP_KEY \n TIMESTAMP \n NONCE \n hex(HASH(body))
//
// where HASH is SHA-256 or SM3 and the signature is the lower-case hex HMAC (with the same
// hash) of that string under the secret. Its String never shows the secret.
type Signer struct {
	Algorithm string
	AppKey    string
	secret    []byte
	sm2       *sm2.PrivateKey // the private key of a mapping's sm2 scheme (NewMappingSigner)
}

// NewSigner returns a signer; the secret is the content of a file, surrounding white space
// removed.
func NewSigner(algorithm, appKey string, secret []byte) (*Signer, error) {
	if algorithm != SignHMACSHA256 && algorithm != SignSM3HMAC {
		return nil, fmt.Errorf("%w: algorithm must be %s, got %q", ErrSigning, strings.Join(SigningAlgorithms, " or "), algorithm)
	}
	if appKey == "" {
		return nil, fmt.Errorf("%w: the app key is empty", ErrSigning)
	}
	s := []byte(strings.TrimSpace(string(secret)))
	if len(s) == 0 {
		return nil, fmt.Errorf("%w: the secret is empty", ErrSigning)
	}
	return &Signer{Algorithm: algorithm, AppKey: appKey, secret: s}, nil
}

// ReadSecretFile reads a secret file, refusing an empty one. Errors never quote the content.
// The file must be a regular file of at most secretfile.DefaultMaxSize bytes that only its
// owner may access (internal/secretfile): a device, a FIFO or a 0644 file is refused.
func ReadSecretFile(path string) ([]byte, error) {
	b, err := secretfile.ReadSecret(path, secretfile.Options{})
	if err != nil {
		return nil, fmt.Errorf("%w: secret file: %w", ErrSigning, err)
	}
	return b, nil
}

func (s *Signer) String() string {
	return fmt.Sprintf("signer(%s, app key %s, secret ****)", s.Algorithm, s.AppKey)
}

func (s *Signer) newHash() func() hash.Hash {
	if s.Algorithm == SignSM3HMAC {
		return sm3.New
	}
	return sha256.New
}

// Sign returns the signature of one request.
func (s *Signer) Sign(method, path, timestamp, nonce string, body []byte) string {
	return Signature(s.newHash(), s.secret, method, path, s.AppKey, timestamp, nonce, body)
}

// Signature computes the signature of the canonical string with hash h under secret.
func Signature(h func() hash.Hash, secret []byte, method, path, appKey, timestamp, nonce string, body []byte) string {
	bh := h()
	bh.Write(body)
	canon := strings.Join([]string{method, path, appKey, timestamp, nonce, hex.EncodeToString(bh.Sum(nil))}, "\n")
	mac := hmac.New(h, secret)
	mac.Write([]byte(canon))
	return hex.EncodeToString(mac.Sum(nil))
}

// newNonce returns 16 random bytes in hex.
func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails on Linux
	return hex.EncodeToString(b[:])
}
