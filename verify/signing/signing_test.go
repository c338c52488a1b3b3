package signing

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
)

func TestSortedString(t *testing.T) {
	p := map[string]string{"timestamp": "1700000000000", "appId": "a1", "sign": "x", "empty": "", "bizData": `{"q":"1"}`, "Zed": "z"}
	// Byte order: upper case before lower case; sign excluded, empty skipped.
	want := `Zed=z&appId=a1&bizData={"q":"1"}&timestamp=1700000000000`
	if got := SortedString(p, []string{"sign"}); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := SortedString(map[string]string{}, nil); got != "" {
		t.Errorf("empty: %q", got)
	}
}

func TestParamValue(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{"s", "s"}, {nil, ""}, {map[string]any{"b": "2", "a": "1"}, `{"a":"1","b":"2"}`}, {3, "3"},
	}
	for _, tt := range tests {
		if got := ParamValue(tt.v); got != tt.want {
			t.Errorf("ParamValue(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestExpandAndPlaceholders(t *testing.T) {
	v := Vars{AppKey: "k", Secret: "s", Timestamp: "1", Nonce: "n", Method: "POST", Path: "/p", Body: []byte("{}")}
	if got := Expand("${app_key}${timestamp}${secret}${body}|${nonce}|${method} ${path}", v); got != "k1s{}|n|POST /p" {
		t.Errorf("Expand = %q", got)
	}
	if bad := UnknownPlaceholders("${app_key}${appSecret}${x}${appSecret}"); strings.Join(bad, ",") != "${appSecret},${x}" {
		t.Errorf("unknown %v", bad)
	}
}

// Every algorithm, against the standard library's (and gmsm's) own functions.
func TestSum(t *testing.T) {
	msg, secret := []byte("a=1&b=2&key=s3"), []byte("s3")
	hs := hmac.New(sha256.New, secret)
	hs.Write(msg)
	hm := hmac.New(sm3.New, secret)
	hm.Write(msg)
	m5 := md5.Sum(msg)
	s2 := sha256.Sum256(msg)
	s3 := sm3.Sum(msg)
	for alg, want := range map[string][]byte{HMACSHA256: hs.Sum(nil), HMACSM3: hm.Sum(nil), MD5: m5[:], SHA256: s2[:], SM3: s3[:]} {
		got, err := Sum(alg, secret, nil, msg)
		if err != nil || !hmac.Equal(got, want) {
			t.Errorf("%s: %x, %v; want %x", alg, got, err, want)
		}
	}
	k, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := Sum(SM2, nil, k, msg)
	if err != nil || !sm2.VerifyASN1WithSM2(&k.PublicKey, nil, msg, sig) {
		t.Errorf("sm2 signature does not verify (%v)", err)
	}
	if _, err := Sum(SM2, nil, nil, msg); err == nil {
		t.Error("sm2 without a key signed")
	}
	if _, err := Sum("sha1", secret, nil, msg); err == nil || !strings.Contains(err.Error(), "unknown algorithm") {
		t.Errorf("unknown algorithm: %v", err)
	}
}

func TestEncodeAndCorrupt(t *testing.T) {
	b := []byte{0xab, 0x01}
	if Encode(Hex, b) != "ab01" || Encode(HexUpper, b) != "AB01" || Encode(Base64, b) != base64.StdEncoding.EncodeToString(b) {
		t.Error("encodings")
	}
	for _, sig := range []string{"ab01", "AB01", "f0", "F0", "9a", "MEUCIQ==", "z", "/x", ""} {
		c := Corrupt(sig)
		if c == sig || len(c) != max(len(sig), 1) {
			t.Errorf("Corrupt(%q) = %q", sig, c)
		}
		if _, err := hex.DecodeString(sig); err == nil && len(sig) > 0 {
			if _, err := hex.DecodeString(c); err != nil {
				t.Errorf("Corrupt(%q) = %q is no longer hex", sig, c)
			}
		}
		if _, err := base64.StdEncoding.DecodeString(sig); err == nil && len(sig)%4 == 0 && sig != "" {
			if _, err := base64.StdEncoding.DecodeString(c); err != nil {
				t.Errorf("Corrupt(%q) = %q is no longer base64", sig, c)
			}
		}
	}
}

func TestParseSM2PrivateKey(t *testing.T) {
	k, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := smx509.MarshalPKCS8PrivateKey(k)
	sec1, _ := smx509.MarshalSM2PrivateKey(k)
	for name, b := range map[string][]byte{
		"pkcs8": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		"sec1":  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
	} {
		got, err := ParseSM2PrivateKey(b)
		if err != nil || !got.Equal(k) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, b := range map[string][]byte{
		"not pem":     []byte("hello"),
		"garbage der": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		"public key":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: p8}),
		"bad sec1":    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{4, 5}}),
	} {
		if _, err := ParseSM2PrivateKey(b); err == nil {
			t.Errorf("%s: parsed", name)
		} else if strings.Contains(err.Error(), string(p8[:8])) {
			t.Errorf("%s: the error quotes the key", name)
		}
	}
}

func TestCanonicalString(t *testing.T) {
	body := []byte(`{"qr_token":"HC-1"}`)
	bh := sha256.Sum256(body)
	want := "POST\n/api/v1/verify/qr\nk\n1700000000000\nn\n" + hex.EncodeToString(bh[:])
	if got := CanonicalString(HMACSHA256, "POST", "/api/v1/verify/qr", "k", "1700000000000", "n", body); got != want {
		t.Errorf("got %q", got)
	}
	sm := sm3.Sum(body)
	if got := CanonicalString(HMACSM3, "POST", "/p", "k", "1", "n", body); !strings.HasSuffix(got, hex.EncodeToString(sm[:])) {
		t.Errorf("sm3 body hash: %q", got)
	}
}
