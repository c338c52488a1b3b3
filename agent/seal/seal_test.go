package seal_test

import (
	"strings"
	"testing"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/seal"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/verify"
)

// Only the platform's key opens the sealed subject; the face is sealed only when kept; the
// look-up hash is keyed; an unknown subject stays empty.
func TestSeal(t *testing.T) {
	pub, priv, err := privacy.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	who := verify.Identity{IDNumber: "350582199001011231", Name: "张三"}
	face := []byte{0xFF, 0xD8, 9, 9}
	for _, keep := range []bool{false, true} {
		s := seal.New(seal.Options{PlatformKey: pub, HashKey: []byte("0123456789abcdef0123456789abcdef"), KeepFace: keep})
		var sub record.Subject
		s.Seal(&sub, who, face)
		if sub.Sealed == "" || strings.Contains(sub.Sealed, who.IDNumber) {
			t.Fatalf("sealed %q", sub.Sealed)
		}
		opened, err := privacy.Open(pub, priv, sub.Sealed)
		if err != nil {
			t.Fatal(err)
		}
		if opened.IDNumber != who.IDNumber || opened.Name != who.Name || (len(opened.Face) > 0) != keep {
			t.Errorf("keep=%v: opened id ok %v, name ok %v, %d face bytes", keep, opened.IDNumber == who.IDNumber, opened.Name == who.Name, len(opened.Face))
		}
		if sub.Hash == "" || sub.Hash != privacy.KeyedHash([]byte("0123456789abcdef0123456789abcdef"), who.IDNumber) {
			t.Errorf("hash %q", sub.Hash)
		}
		if len(s.Fingerprint()) != 16 {
			t.Errorf("fingerprint %q", s.Fingerprint())
		}
		var none record.Subject
		s.Seal(&none, verify.Identity{}, face)
		if none != (record.Subject{}) {
			t.Errorf("an unknown subject was sealed: %+v", none)
		}
	}
}
