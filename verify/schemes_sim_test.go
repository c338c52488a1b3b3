package verify_test

import (
	"context"
	"crypto/rand"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/sentinel-edge/sentinel/sim/platform"
	"github.com/sentinel-edge/sentinel/sim/population"
	"github.com/sentinel-edge/sentinel/verify"
)

// Each signing scheme of docs/docking-spec.md, "Signing", through its shipped mapping
// (configs/mappings/vendor-*.yaml) against the simulator's dialect of it, which checks the
// signature by its own code: every credential decided right, every request's signature
// accepted; a wrong secret (a wrong key for sm2) and an unsigned request refused.

// sm2Pair makes an SM2 key pair: the private key as PKCS#8 PEM, the public key.
func sm2Pair(t testing.TB) ([]byte, *sm2.PrivateKey) {
	t.Helper()
	k, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := smx509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), k
}

// schemeSim serves dialect with one app key; its secret is secret, or for vendor-sm2 the
// public key of priv.
func schemeSim(t *testing.T, dialect string, priv *sm2.PrivateKey) *simEnv {
	t.Helper()
	people := population.Generate(population.GenerateOptions{Now: simNow, Seed: 7, Random: 3})
	pop, err := population.New(people)
	if err != nil {
		t.Fatal(err)
	}
	e := &simEnv{people: people, log: &syncBuf{}, script: platform.NewScript()}
	sg := &platform.Signing{Keys: map[string]platform.Key{appKey: {Secret: []byte(secret)}, "another-unit": {Secret: []byte("another-secret")}}}
	if priv != nil {
		sg.Keys[appKey] = platform.Key{SM2Public: &priv.PublicKey}
	}
	e.srv = httptest.NewServer(platform.NewServer(pop, platform.Options{Dialect: dialect, Signing: sg, RequestLog: e.log, Faults: e.script}))
	t.Cleanup(e.srv.Close)
	return e
}

func loadMapping(t testing.TB, name string) *verify.Mapping {
	t.Helper()
	m, err := verify.LoadMapping(filepath.Join("..", "configs", "mappings", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func schemeClient(t *testing.T, e *simEnv, m *verify.Mapping, key string, secretOrPEM []byte) *verify.Client {
	t.Helper()
	var s *verify.Signer
	if secretOrPEM != nil {
		var err error
		if s, err = verify.NewMappingSigner(m, "", key, secretOrPEM); err != nil {
			t.Fatal(err)
		}
	}
	return verify.NewClient(verify.ClientOptions{URL: e.srv.URL, Device: "gate-01", Venue: "v-1", Timeout: 2 * time.Second, Mapping: m, Signer: s})
}

func TestSchemesAgainstTheirDialects(t *testing.T) {
	keyPEM, priv := sm2Pair(t)
	otherPEM, _ := sm2Pair(t)
	for _, dialect := range []string{platform.DialectVendorSorted, platform.DialectVendorMD5, platform.DialectVendorSHA256, platform.DialectVendorSM2} {
		t.Run(dialect, func(t *testing.T) {
			var p *sm2.PrivateKey
			good, wrong := []byte(secret), []byte("not-the-secret")
			if dialect == platform.DialectVendorSM2 {
				p, good, wrong = priv, keyPEM, otherPEM
			}
			e := schemeSim(t, dialect, p)
			m := loadMapping(t, dialect)
			v := verify.NewVerifier(schemeClient(t, e, m, appKey, good), verify.VerifierOptions{Policy: greenPolicy})
			decideAll(t, e, v, verify.SigAccepted)
			for _, le := range e.log.entries(t) {
				if le.Signature != platform.SigOK {
					t.Errorf("request %s %s: server saw signature %q, want ok", le.Interface, le.Passage, le.Signature)
				}
			}
			for name, c := range map[string]*verify.Client{
				"wrong secret":  schemeClient(t, e, m, appKey, wrong),
				"other app key": schemeClient(t, e, m, "another-unit", good),
				"unsigned":      schemeClient(t, e, m, appKey, nil),
			} {
				if dialect == platform.DialectVendorSM2 && name == "other app key" {
					continue // that key has no SM2 public key: the same as a wrong key
				}
				v := verify.NewVerifier(c, verify.VerifierOptions{Policy: greenPolicy})
				d := v.Decide(context.Background(), verify.Credential{Kind: verify.KindQR, QRToken: population.TokenGreenFresh}, "p-"+name)
				if d.Verdict != verify.Deny || d.Reason != verify.ReasonSignatureRejected || len(d.Calls()) != 1 {
					t.Errorf("%s: %s/%s with %d calls, want deny/signature_rejected with 1 (err %v)", name, d.Verdict, d.Reason, len(d.Calls()), d.Err)
				}
			}
		})
	}
}

// decideAll runs the population's cases through v: QR tokens, an ID card with the right and
// a wrong name, and a face; every QR call has a request id and the signature result sig.
func decideAll(t *testing.T, e *simEnv, v *verify.Verifier, sig string) {
	t.Helper()
	cases := []struct{ token, verdict, reason string }{
		{population.TokenGreenFresh, verify.Pass, verify.ReasonOK},
		{population.TokenYellow, verify.Deny, verify.ReasonHealthCodeYellow},
		{population.TokenRed, verify.Deny, verify.ReasonHealthCodeRed},
		{population.TokenGreenOld, verify.Deny, verify.ReasonNATExpired},
		{population.TokenGreenNoNAT, verify.Deny, verify.ReasonNATMissing},
		{population.TokenGreenPos, verify.Deny, verify.ReasonNATPositive},
		{population.TokenUnknown, verify.Deny, verify.ReasonUnknownCredential},
	}
	for _, c := range cases {
		d := v.Decide(context.Background(), verify.Credential{Kind: verify.KindQR, QRToken: c.token}, "pid-"+c.token)
		if d.Verdict != c.verdict || d.Reason != c.reason || d.Mode != verify.ModeOnline {
			t.Errorf("%s: %s/%s/%s, want %s/%s (err %v)", population.Mask(c.token), d.Verdict, d.Reason, d.Mode, c.verdict, c.reason, d.Err)
		}
		if d.Call == nil || d.Call.RequestID == "" || d.Call.Signature != sig {
			t.Errorf("%s: call %+v: want a request id and signature %s", population.Mask(c.token), d.Call, sig)
		}
	}
	fresh := e.person(t, population.TokenGreenFresh)
	d := v.Decide(context.Background(), verify.Credential{Kind: verify.KindIDCard, IDNumber: fresh.IDNumber, Name: fresh.Name}, "pid-id")
	if d.Verdict != verify.Pass || d.Subject.IDNumber != fresh.IDNumber {
		t.Errorf("idcard: %s/%s (err %v)", d.Verdict, d.Reason, d.Err)
	}
	d = v.Decide(context.Background(), verify.Credential{Kind: verify.KindIDCard, IDNumber: fresh.IDNumber, Name: "某某"}, "pid-id2")
	if d.Reason != verify.ReasonIdentityMismatch {
		t.Errorf("idcard wrong name: %s, want identity_mismatch (err %v)", d.Reason, d.Err)
	}
	d = v.Decide(context.Background(), verify.Credential{Kind: verify.KindFace, FaceJPEG: platform.FaceJPEG(fresh.IDNumber)}, "pid-face")
	if d.Verdict != verify.Pass || d.Subject.IDNumber != fresh.IDNumber {
		t.Errorf("face: %s/%s (err %v)", d.Verdict, d.Reason, d.Err)
	}
}

// The reference scheme written out as a signing section (canonical, hmac-sm3, the reference
// headers) is the reference scheme: the reference platform accepts it.
func TestCanonicalSectionIsTheReferenceScheme(t *testing.T) {
	ref := string(verify.ReferenceMappingYAML())
	for _, alg := range []struct{ section, config string }{{"hmac-sha256", "hmac-sha256"}, {"hmac-sm3", "sm3-hmac"}} {
		m, err := verify.ParseMapping([]byte(ref + `signing:
  string: canonical
  algorithm: ` + alg.section + `
  put: header:X-Signature
  timestamp: {put: header:X-Timestamp, unit: ms}
  nonce: {put: header:X-Nonce}
  app_key: {put: header:X-App-Key}
  sign_method: {put: header:X-Sign-Method, value: ` + alg.config + `}
`))
		if err != nil {
			t.Fatal(err)
		}
		e := startSim(t, platform.DialectReference, true)
		v := verify.NewVerifier(schemeClient(t, e, m, appKey, []byte(secret)), verify.VerifierOptions{Policy: greenPolicy})
		decideAll(t, e, v, verify.SigAccepted)
		wrong := verify.NewVerifier(schemeClient(t, e, m, appKey, []byte("wrong")), verify.VerifierOptions{Policy: greenPolicy})
		if d := wrong.Decide(context.Background(), verify.Credential{Kind: verify.KindQR, QRToken: population.TokenGreenFresh}, "p"); d.Reason != verify.ReasonSignatureRejected {
			t.Errorf("%s with a wrong secret: %s", alg.section, d.Reason)
		}
	}
}

func readMapping(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "configs", "mappings", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
