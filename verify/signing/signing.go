package signing

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
)

// ErrSigning is wrapped by every error of this package.
var ErrSigning = errors.New("signing")

// Algorithms: what is computed over the string to sign.
const (
	HMACSHA256 = "hmac-sha256" // HMAC-SHA256 under the secret
	HMACSM3    = "hmac-sm3"    // HMAC-SM3 under the secret
	MD5        = "md5"         // MD5 of the string (the secret is in it)
	SHA256     = "sha256"      // SHA-256 of the string (the secret is in it)
	SM3        = "sm3"         // SM3 of the string (the secret is in it)
	SM2        = "sm2"         // an SM2 signature (SM3 digest, default user id) under a private key
)

// Algorithms lists the algorithms.
var Algorithms = []string{HMACSHA256, HMACSM3, MD5, SHA256, SM3, SM2}

// Encodings of the signature.
const (
	Hex      = "hex"       // lower-case hex
	HexUpper = "hex_upper" // upper-case hex
	Base64   = "base64"    // standard base64 with padding
)

// Encodings lists the encodings.
var Encodings = []string{Hex, HexUpper, Base64}

// Kinds of string to sign.
const (
	Canonical = "canonical" // METHOD \n PATH \n APP_KEY \n TIMESTAMP \n NONCE \n hex(HASH(body))
	Sorted    = "sorted"    // the parameters sorted by name, k=v joined by &, then the suffix
	Template  = "template"  // a template with placeholders
)

// Kinds lists the kinds of string to sign.
var Kinds = []string{Canonical, Sorted, Template}

// Placeholders a template or a suffix may use.
var Placeholders = []string{"${app_key}", "${secret}", "${timestamp}", "${nonce}", "${body}", "${method}", "${path}"}

// Keyed says whether the algorithm takes the secret as its key (HMAC).
func Keyed(alg string) bool { return alg == HMACSHA256 || alg == HMACSM3 }

// Digest says whether the algorithm is a bare digest: the secret must be in the string.
func Digest(alg string) bool { return alg == MD5 || alg == SHA256 || alg == SM3 }

// Vars are the values of the placeholders. Body is the exact body sent.
type Vars struct {
	AppKey, Secret, Timestamp, Nonce, Method, Path string
	Body                                           []byte
}

var placeholderRE = regexp.MustCompile(`\$\{[^}]*\}`)

// UnknownPlaceholders lists the ${...} of s that are not Placeholders.
func UnknownPlaceholders(s string) []string {
	var out []string
	for _, p := range placeholderRE.FindAllString(s, -1) {
		if !slices.Contains(Placeholders, p) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// Expand replaces the placeholders of s by their values.
func Expand(s string, v Vars) string {
	return placeholderRE.ReplaceAllStringFunc(s, func(p string) string {
		switch p {
		case "${app_key}":
			return v.AppKey
		case "${secret}":
			return v.Secret
		case "${timestamp}":
			return v.Timestamp
		case "${nonce}":
			return v.Nonce
		case "${body}":
			return string(v.Body)
		case "${method}":
			return v.Method
		case "${path}":
			return v.Path
		}
		return p
	})
}

// BodyHash is the hash of the canonical string's last line: SHA-256, or SM3 for the SM
// algorithms, or MD5 for md5.
func BodyHash(alg string) func() hash.Hash {
	switch alg {
	case HMACSM3, SM3, SM2:
		return sm3.New
	case MD5:
		return md5.New
	}
	return sha256.New
}

// CanonicalString is the six lines of the reference interface (docs/docking-spec.md).
func CanonicalString(alg, method, path, appKey, timestamp, nonce string, body []byte) string {
	h := BodyHash(alg)()
	h.Write(body)
	return strings.Join([]string{method, path, appKey, timestamp, nonce, hex.EncodeToString(h.Sum(nil))}, "\n")
}

// ParamValue is a parameter's value as the sorted string writes it: a string as it is, a
// number or a boolean as JSON writes it, an object or an array as its compact JSON (the
// bytes a JSON body carries); empty for null.
func ParamValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// SortedString joins the parameters that are not excluded and not empty, sorted by name
// (byte order), as k=v separated by &.
func SortedString(params map[string]string, exclude []string) string {
	keys := make([]string, 0, len(params))
	for k, v := range params {
		if v == "" || slices.Contains(exclude, k) {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params[k])
	}
	return b.String()
}

// Sum computes the algorithm over msg: an HMAC under secret, a digest, or an SM2 signature
// under key (ASN.1 DER, randomised).
func Sum(alg string, secret []byte, key *sm2.PrivateKey, msg []byte) ([]byte, error) {
	switch alg {
	case HMACSHA256, HMACSM3:
		mac := hmac.New(BodyHash(alg), secret)
		mac.Write(msg)
		return mac.Sum(nil), nil
	case MD5, SHA256, SM3:
		h := BodyHash(alg)()
		h.Write(msg)
		return h.Sum(nil), nil
	case SM2:
		if key == nil {
			return nil, fmt.Errorf("%w: sm2 needs a private key", ErrSigning)
		}
		sig, err := key.Sign(rand.Reader, msg, sm2.DefaultSM2SignerOpts)
		if err != nil {
			return nil, fmt.Errorf("%w: sm2: %v", ErrSigning, err)
		}
		return sig, nil
	}
	return nil, fmt.Errorf("%w: unknown algorithm %q (known: %s)", ErrSigning, alg, strings.Join(Algorithms, ", "))
}

// Encode writes a signature in the encoding.
func Encode(enc string, b []byte) string {
	switch enc {
	case HexUpper:
		return strings.ToUpper(hex.EncodeToString(b))
	case Base64:
		return base64.StdEncoding.EncodeToString(b)
	}
	return hex.EncodeToString(b)
}

// Corrupt returns sig with its first character changed to another one of the same alphabet,
// so that it is still well formed but wrong (for a docking check that the platform refuses
// a bad signature).
func Corrupt(sig string) string {
	if sig == "" {
		return "0"
	}
	for _, set := range []string{"0123456789", "abcdef", "ABCDEF", "ghijklmnopqrstuvwxyz", "GHIJKLMNOPQRSTUVWXYZ", "+/"} {
		if i := strings.IndexByte(set, sig[0]); i >= 0 {
			return string(set[(i+1)%len(set)]) + sig[1:]
		}
	}
	return "0" + sig[1:]
}

// ParseSM2PrivateKey reads a PEM SM2 private key: PKCS#8 ("PRIVATE KEY") or SEC 1 ("EC
// PRIVATE KEY"), unencrypted. Its errors never quote the key.
func ParseSM2PrivateKey(pemBytes []byte) (*sm2.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("%w: not a PEM file (want a PKCS#8 \"PRIVATE KEY\" or SEC 1 \"EC PRIVATE KEY\" block)", ErrSigning)
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := smx509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: the PKCS#8 key does not parse", ErrSigning)
		}
		sk, ok := k.(*sm2.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%w: the PKCS#8 key is a %T, not an SM2 key", ErrSigning, k)
		}
		return sk, nil
	case "EC PRIVATE KEY", "SM2 PRIVATE KEY":
		k, err := smx509.ParseSM2PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: the SEC 1 key does not parse as an SM2 key", ErrSigning)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: PEM block %q is not a private key (want \"PRIVATE KEY\" or \"EC PRIVATE KEY\")", ErrSigning, block.Type)
}
