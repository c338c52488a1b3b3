package verify_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/verify"
)

// BenchmarkSignedRequest: one QR request built, signed by each scheme and sent to a
// loopback server that answers at once (the signing is the difference between schemes).
func BenchmarkSignedRequest(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	keyPEM, _ := sm2Pair(b)
	for _, name := range []string{"reference", "vendor-sorted", "vendor-md5", "vendor-sha256", "vendor-sm2"} {
		m := verify.ReferenceMapping()
		secret := []byte("bench-secret")
		if name != "reference" {
			m = loadMapping(b, name)
		}
		if name == "vendor-sm2" {
			secret = keyPEM
		}
		s, err := verify.NewMappingSigner(m, verify.SignHMACSHA256, "app", secret)
		if err != nil {
			b.Fatal(err)
		}
		c := verify.NewClient(verify.ClientOptions{URL: srv.URL, Timeout: time.Second, Mapping: m, Signer: s})
		cred := verify.Credential{Kind: verify.KindQR, QRToken: "HC-GREEN-FRESH"}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				_, _, _ = c.Verify(context.Background(), cred, "p")
			}
		})
	}
}
