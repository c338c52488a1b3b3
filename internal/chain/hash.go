package chain

import (
	"crypto/sha256"
	"fmt"
	"hash"

	"github.com/emmansun/gmsm/sm3"
)

// Alg is the chain's hash function (records.chain_hash). Both give 32 bytes.
type Alg uint8

// The hash functions. SHA256 is the default.
const (
	SHA256 Alg = iota + 1
	SM3
)

// HashSize is the length of every hash in the chain (prev, hash, genesis), in bytes.
const HashSize = 32

// ParseAlg reads a records.chain_hash value: "sha256" (also "") or "sm3".
func ParseAlg(s string) (Alg, error) {
	switch s {
	case "", "sha256":
		return SHA256, nil
	case "sm3":
		return SM3, nil
	}
	return 0, fmt.Errorf("%w %q: sha256 or sm3", ErrAlg, s)
}

// String returns the name as records.chain_hash and the hash_alg member write it.
func (a Alg) String() string {
	switch a {
	case SHA256:
		return "sha256"
	case SM3:
		return "sm3"
	}
	return fmt.Sprintf("alg(%d)", uint8(a))
}

func (a Alg) valid() bool { return a == SHA256 || a == SM3 }

func (a Alg) new() hash.Hash {
	if a == SM3 {
		return sm3.New()
	}
	return sha256.New()
}

// sum returns H(parts[0] ‖ parts[1] ‖ ...).
func (a Alg) sum(parts ...[]byte) []byte {
	h := a.new()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(make([]byte, 0, HashSize))
}

// sum1 returns H(b) with no hasher allocated.
func (a Alg) sum1(b []byte) []byte {
	if a == SM3 {
		h := sm3.Sum(b)
		return h[:]
	}
	h := sha256.Sum256(b)
	return h[:]
}
