package verify_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/verify"
)

// The findings of issue #13, each as it was seen on main: a third interface shape, written
// from public facts, that the mapping could not express.

// A platform that gives times as Unix milliseconds: the mapping says `layout: unix_ms`, and
// the time is read as that instant (a JSON number or a string).
func TestFindingUnixMillisCanBeMapped(t *testing.T) {
	const sampled = 1795939200000 // 2026-11-29T08:00:00Z
	for _, form := range []string{`1795939200000`, `"1795939200000"`} {
		m, err := verify.ParseMapping([]byte(strings.ReplaceAll(unixMsMapping, "SAMPLED", form)))
		if err != nil {
			t.Fatalf("%s: a unix_ms mapping is refused: %v", form, err)
		}
		r, err := m.ParseAnswer([]byte(m.Sample))
		if err != nil {
			t.Fatalf("%s: the sample does not parse: %v", form, err)
		}
		if want := time.UnixMilli(sampled); r.NAT == nil || !r.NAT.SampledAt.Equal(want) {
			t.Errorf("%s: sampled at %v, want %v", form, r.NAT, want.UTC())
		}
	}
}

const unixMsMapping = `name: unix-ms
endpoints:
  ping: {method: GET, path: /ping}
  qr: {method: POST, path: /qr}
  idcard: {method: POST, path: /idcard}
request:
  qr: {token: "${qr_token}"}
  idcard: {idCard: "${id_number}", name: "${name}"}
response:
  code: {path: code}
  ok: ["0"]
  match: {path: data.match}
  health_code: {path: data.color, values: {"0": green, "1": yellow, "2": red}}
  nat_result: {path: data.nat.result, values: {"1": negative, "2": positive}}
  nat_sampled_at: {path: data.nat.sampledAt, layout: unix_ms}
  vaccine_doses: {path: data.doses}
sample: |
  {"code": 0, "data": {"match": true, "color": 0, "nat": {"result": 1, "sampledAt": SAMPLED}, "doses": 3}}
`

// A layout without a single time verb "parses" nothing: the mapping is refused, naming the
// key and its line, even without a sample that would have shown it.
func TestFindingLayoutWithoutVerbRefused(t *testing.T) {
	y := strings.Replace(unixMsMapping, "layout: unix_ms", `layout: "yyyy-MM-dd HH:mm:ss"`, 1)
	y = y[:strings.Index(y, "sample:")]
	_, err := verify.ParseMapping([]byte(y))
	if err == nil {
		t.Fatal("a layout without a time verb was accepted")
	}
	if !strings.Contains(err.Error(), "response.nat_sampled_at.layout") || !strings.Contains(err.Error(), "line 15") {
		t.Errorf("error does not name the key and its line: %v", err)
	}
}

// The gate vendor's scheme: every top-level body field except the signature, sorted, empty
// ones skipped, joined k=v&, then &key=<secret>; SHA-256, upper-case hex, in a body field.
// The mapping says so in its signing section, and the request carries that signature.
func TestFindingVendorSortedSigning(t *testing.T) {
	const secret = "vendor-secret-1"
	got := make(chan map[string]string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]string
		_ = json.Unmarshal(b, &body)
		got <- body
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"code": 0, "data": {"match": true, "color": 0, "nat": null, "doses": 0}}`)
	}))
	defer srv.Close()
	y := unixMsMapping[:strings.Index(unixMsMapping, "sample:")] + `signing:
  string: sorted
  suffix: "&key=${secret}"
  algorithm: sha256
  encoding: hex_upper
  put: body:sign
  timestamp: {put: body:timestamp, unit: ms}
  nonce: {put: body:nonceStr}
  app_key: {put: body:appId}
`
	m, err := verify.ParseMapping([]byte(y))
	if err != nil {
		t.Fatalf("the vendor's signing cannot be expressed: %v", err)
	}
	s, err := verify.NewSigner(verify.SignHMACSHA256, "app-9", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	c := verify.NewClient(verify.ClientOptions{URL: srv.URL, Timeout: 2 * time.Second, Mapping: m, Signer: s})
	if _, _, err := c.Verify(context.Background(), verify.Credential{Kind: verify.KindQR, QRToken: "HC-1"}, "p"); err != nil {
		t.Fatalf("verify: %v", err)
	}
	body := <-got
	var keys []string
	for k, v := range body {
		if k != "sign" && v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+body[k])
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "&") + "&key=" + secret))
	if want := strings.ToUpper(hex.EncodeToString(sum[:])); body["sign"] != want || body["appId"] != "app-9" || body["timestamp"] == "" || body["nonceStr"] == "" {
		t.Errorf("body %v: sign %q, want %q", body, body["sign"], want)
	}
}
