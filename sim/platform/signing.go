package platform

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm3"
)

// Signature check results, as the request log records them.
const (
	SigOff     = "off"     // the server does not check signatures
	SigOK      = "ok"      // valid, fresh, first use of its nonce
	SigMissing = "missing" // a signing header is absent
	SigBad     = "bad"     // wrong app key, unknown method, or a signature that does not verify
	SigStale   = "stale"   // the timestamp lies outside the replay window
	SigReplay  = "replay"  // the nonce was seen within the window
)

// DefaultReplayWindow is how far a request's timestamp may be from the server's clock.
const DefaultReplayWindow = 5 * time.Minute

// Signing is the server's signature check: the app key and secret it shares with the units.
// It is written here independently of the client's signer (verify.Signer), so that a test of
// one against the other checks the spec, not a shared bug. The canonical string is
//
//	METHOD \n PATH \n APP_KEY \n TIMESTAMP \n NONCE \n hex(HASH(body))
//
// and the signature is hex HMAC-HASH(secret, canonical), HASH being SHA-256 for
// "hmac-sha256" and SM3 for "sm3-hmac".
type Signing struct {
	AppKey string
	Secret []byte
	// Window bounds the timestamp's distance from now; 0 means DefaultReplayWindow.
	Window time.Duration

	mu     sync.Mutex
	nonces map[string]time.Time
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

// check verifies one request; it returns a Sig* result.
func (s *Signing) check(h SignHeaders, get func(string) string, method, path string, body []byte, now time.Time) string {
	appKey, tss, nonce, sig, alg := get(h.AppKey), get(h.Timestamp), get(h.Nonce), get(h.Signature), get(h.Method)
	if appKey == "" || tss == "" || nonce == "" || sig == "" || alg == "" {
		return SigMissing
	}
	newHash := signHash(strings.ToLower(alg))
	if newHash == nil || appKey != s.AppKey {
		return SigBad
	}
	bh := newHash()
	bh.Write(body)
	canon := strings.Join([]string{method, path, appKey, tss, nonce, hex.EncodeToString(bh.Sum(nil))}, "\n")
	mac := hmac.New(newHash, s.Secret)
	mac.Write([]byte(canon))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(strings.ToLower(sig)), []byte(want)) {
		return SigBad
	}
	n, err := strconv.ParseInt(tss, 10, 64)
	if err != nil {
		return SigBad
	}
	var ts time.Time
	if h.TimestampSeconds {
		ts = time.Unix(n, 0)
	} else {
		ts = time.UnixMilli(n)
	}
	window := s.Window
	if window <= 0 {
		window = DefaultReplayWindow
	}
	if d := now.Sub(ts); d > window || d < -window {
		return SigStale
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nonces == nil {
		s.nonces = map[string]time.Time{}
	}
	if _, seen := s.nonces[nonce]; seen {
		return SigReplay
	}
	if len(s.nonces) > 10_000 {
		for k, t := range s.nonces {
			if now.Sub(t) > 2*window {
				delete(s.nonces, k)
			}
		}
	}
	s.nonces[nonce] = now
	return SigOK
}
