package platform

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
)

// Signature check results, as the request log records them.
const (
	SigOff     = "off"     // the server does not check signatures
	SigOK      = "ok"      // valid, fresh, first use of its nonce
	SigMissing = "missing" // a signing field is absent
	SigBad     = "bad"     // unknown app key, unknown method, or a signature that does not verify
	SigStale   = "stale"   // the timestamp lies outside the replay window
	SigReplay  = "replay"  // the nonce was seen within the window
)

// DefaultReplayWindow is how far a request's timestamp may be from the server's clock.
const DefaultReplayWindow = 5 * time.Minute

// Signing is the server's signature check: the app keys it shares with the units, each with
// its secret (and, for the sm2 dialect, the unit's SM2 public key). Every scheme is written
// here independently of the client's signer (verify and verify/signing), by the words of
// docs/docking-spec.md, so that a test of one against the other checks the spec, not a
// shared bug. The reference scheme's canonical string is
//
//	METHOD \n PATH \n APP_KEY \n TIMESTAMP \n NONCE \n hex(HASH(body))
//
// and its signature hex HMAC-HASH(secret, canonical), HASH being SHA-256 for "hmac-sha256"
// and SM3 for "sm3-hmac". The other dialects' schemes are in dialect_vendor.go.
type Signing struct {
	AppKey string
	Secret []byte
	// SM2Public is AppKey's SM2 public key (the sm2 dialect verifies with it).
	SM2Public *ecdsa.PublicKey
	// Keys are further app keys, so that several units can share one platform.
	Keys map[string]Key
	// Window bounds the timestamp's distance from now; 0 means DefaultReplayWindow.
	Window time.Duration

	mu     sync.Mutex
	nonces map[string]time.Time
}

// Key is what the platform holds for one app key.
type Key struct {
	Secret    []byte
	SM2Public *ecdsa.PublicKey
}

// key returns the key of appKey.
func (s *Signing) key(appKey string) (Key, bool) {
	if appKey != "" && appKey == s.AppKey {
		return Key{Secret: s.Secret, SM2Public: s.SM2Public}, true
	}
	k, ok := s.Keys[appKey]
	return k, ok
}

func (s *Signing) window() time.Duration {
	if s.Window <= 0 {
		return DefaultReplayWindow
	}
	return s.Window
}

// fresh says whether ts is within the window of now.
func (s *Signing) fresh(ts, now time.Time) bool {
	w := s.window()
	d := now.Sub(ts)
	return d <= w && d >= -w
}

// useNonce records a nonce; false when it was seen within the window.
func (s *Signing) useNonce(nonce string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nonces == nil {
		s.nonces = map[string]time.Time{}
	}
	if _, seen := s.nonces[nonce]; seen {
		return false
	}
	if len(s.nonces) > 10_000 {
		for k, t := range s.nonces {
			if now.Sub(t) > 2*s.window() {
				delete(s.nonces, k)
			}
		}
	}
	s.nonces[nonce] = now
	return true
}

// stamped finishes a check whose signature verified: the timestamp must parse and be fresh,
// and the nonce (when the scheme has one) unused.
func (s *Signing) stamped(ts time.Time, tsOK bool, nonce string, now time.Time) string {
	switch {
	case !tsOK:
		return SigBad
	case !s.fresh(ts, now):
		return SigStale
	case nonce != "" && !s.useNonce(nonce, now):
		return SigReplay
	}
	return SigOK
}

func signHash(method string) func() hash.Hash {
	switch method {
	case "hmac-sha256":
		return sha256.New
	case "sm3-hmac":
		return sm3.New
	}
	return nil
}

// unixStamp reads a Unix time in seconds or milliseconds.
func unixStamp(s string, seconds bool) (time.Time, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	if seconds {
		return time.Unix(n, 0), true
	}
	return time.UnixMilli(n), true
}

// check verifies one request of the reference scheme (headers h); it returns a Sig* result.
func (s *Signing) check(h SignHeaders, get func(string) string, method, path string, body []byte, now time.Time) string {
	appKey, tss, nonce, sig, alg := get(h.AppKey), get(h.Timestamp), get(h.Nonce), get(h.Signature), get(h.Method)
	if appKey == "" || tss == "" || nonce == "" || sig == "" || alg == "" {
		return SigMissing
	}
	newHash := signHash(strings.ToLower(alg))
	key, known := s.key(appKey)
	if newHash == nil || !known {
		return SigBad
	}
	bh := newHash()
	bh.Write(body)
	canon := strings.Join([]string{method, path, appKey, tss, nonce, hex.EncodeToString(bh.Sum(nil))}, "\n")
	mac := hmac.New(newHash, key.Secret)
	mac.Write([]byte(canon))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(strings.ToLower(sig)), []byte(want)) {
		return SigBad
	}
	ts, ok := unixStamp(tss, h.TimestampSeconds)
	return s.stamped(ts, ok, nonce, now)
}

// sortedParams joins the parameters, except the excluded ones and the empty ones, sorted by
// name, as k=v separated by &: the gate vendor's and the insurance platform's string.
func sortedParams(p map[string]string, exclude ...string) string {
	var keys []string
	for k, v := range p {
		skip := v == ""
		for _, x := range exclude {
			skip = skip || k == x
		}
		if !skip {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + p[k]
	}
	return strings.Join(parts, "&")
}

// checkSortedSHA256 is the gate vendor's scheme: the form fields appId, timestamp (ms),
// nonceStr and sign; sign is upper-case hex SHA-256 of the sorted string, then
// "&key=" and the secret.
func (s *Signing) checkSortedSHA256(form url.Values, now time.Time) string {
	p := map[string]string{}
	for k := range form {
		p[k] = form.Get(k)
	}
	appKey, tss, nonce, sig := p["appId"], p["timestamp"], p["nonceStr"], p["sign"]
	if appKey == "" || tss == "" || nonce == "" || sig == "" {
		return SigMissing
	}
	key, ok := s.key(appKey)
	if !ok {
		return SigBad
	}
	sum := sha256.Sum256([]byte(sortedParams(p, "sign") + "&key=" + string(key.Secret)))
	if !hmac.Equal([]byte(sig), []byte(strings.ToUpper(hex.EncodeToString(sum[:])))) {
		return SigBad
	}
	ts, tsOK := unixStamp(tss, false)
	return s.stamped(ts, tsOK, nonce, now)
}

// checkMD5 is the provincial gateway's scheme: headers appKey, timestamp (s) and sign, the
// lower-case hex MD5 of app key, timestamp, secret and body, concatenated. It has no nonce.
func (s *Signing) checkMD5(h http.Header, body []byte, now time.Time) string {
	appKey, tss, sig := h.Get("appKey"), h.Get("timestamp"), h.Get("sign")
	if appKey == "" || tss == "" || sig == "" {
		return SigMissing
	}
	key, ok := s.key(appKey)
	if !ok {
		return SigBad
	}
	sum := md5.Sum([]byte(appKey + tss + string(key.Secret) + string(body)))
	if !hmac.Equal([]byte(sig), []byte(hex.EncodeToString(sum[:]))) {
		return SigBad
	}
	ts, tsOK := unixStamp(tss, true)
	return s.stamped(ts, tsOK, "", now)
}

// checkSHA256Query is the city platform's scheme: query parameters appId, timestamp
// (yyyyMMddHHmmss in China Standard Time) and sign, the hex SHA-256 of app id, secret and
// timestamp, concatenated. It has no nonce.
func (s *Signing) checkSHA256Query(q url.Values, now time.Time) string {
	appKey, tss, sig := q.Get("appId"), q.Get("timestamp"), q.Get("sign")
	if appKey == "" || tss == "" || sig == "" {
		return SigMissing
	}
	key, ok := s.key(appKey)
	if !ok {
		return SigBad
	}
	sum := sha256.Sum256([]byte(appKey + string(key.Secret) + tss))
	if !hmac.Equal([]byte(strings.ToLower(sig)), []byte(hex.EncodeToString(sum[:]))) {
		return SigBad
	}
	ts, err := time.ParseInLocation("20060102150405", tss, cst)
	return s.stamped(ts, err == nil, "", now)
}

// checkSM2 is the insurance platform's scheme: top-level body fields appId, timestamp (ms),
// nonceStr and signData; signData is the base64 SM2 signature (SM3, default user id) of the
// sorted string of every other top-level field (signData, encData and extra left out), an
// object written as its JSON as sent.
func (s *Signing) checkSM2(p map[string]string, now time.Time) string {
	appKey, tss, nonce, sig := p["appId"], p["timestamp"], p["nonceStr"], p["signData"]
	if appKey == "" || tss == "" || nonce == "" || sig == "" {
		return SigMissing
	}
	key, ok := s.key(appKey)
	if !ok || key.SM2Public == nil {
		return SigBad
	}
	der, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || !sm2.VerifyASN1WithSM2(key.SM2Public, nil, []byte(sortedParams(p, "signData", "encData", "extra")), der) {
		return SigBad
	}
	ts, tsOK := unixStamp(tss, false)
	return s.stamped(ts, tsOK, nonce, now)
}

// ParseSM2PublicKey reads a PEM public key ("PUBLIC KEY", PKIX) on the SM2 curve.
func ParseSM2PublicKey(pemBytes []byte) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM \"PUBLIC KEY\" block")
	}
	k, err := smx509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, errors.New("the public key does not parse")
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || !sm2.IsSM2PublicKey(pub) {
		return nil, fmt.Errorf("the public key is a %T, not on the SM2 curve", k)
	}
	return pub, nil
}
