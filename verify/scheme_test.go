package verify_test

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"github.com/sentinel-edge/sentinel/verify"
)

// Each scheme's request, captured and checked against a signature built here by hand from
// the scheme's words: the client's signing code is not used to check itself.

type captured struct {
	method string
	query  url.Values
	header http.Header
	body   []byte
}

// capture answers every request with answer and hands over what it received.
func capture(t *testing.T, answer string) (string, <-chan captured) {
	t.Helper()
	ch := make(chan captured, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- captured{r.Method, r.URL.Query(), r.Header.Clone(), b}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, ch
}

var fixedNow = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)

func sendQR(t *testing.T, url string, m *verify.Mapping, s *verify.Signer) {
	t.Helper()
	c := verify.NewClient(verify.ClientOptions{URL: url, Device: "gate-01", Venue: "v-1", Timeout: 2 * time.Second, Mapping: m, Signer: s, Now: func() time.Time { return fixedNow }})
	_, _, _ = c.Verify(context.Background(), verify.Credential{Kind: verify.KindQR, QRToken: "HC-TOKEN-1"}, "pid-1")
}

func signer(t *testing.T, m *verify.Mapping, key string) *verify.Signer {
	t.Helper()
	s, err := verify.NewMappingSigner(m, verify.SignHMACSHA256, "app-1", []byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The reference scheme is unchanged: headers X-App-Key, X-Timestamp (ms), X-Nonce (32 hex),
// X-Sign-Method and X-Signature, the lower-case hex HMAC-SHA256 of the six canonical lines,
// and a JSON body.
func TestReferenceSchemeBytes(t *testing.T) {
	u, got := capture(t, `{}`)
	s, err := verify.NewSigner(verify.SignHMACSHA256, "app-1", []byte("sec"))
	if err != nil {
		t.Fatal(err)
	}
	sendQR(t, u, verify.ReferenceMapping(), s)
	r := <-got
	body := `{"qr_token":"HC-TOKEN-1"}`
	if string(r.body) != body || r.method != "POST" || len(r.query) != 0 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("request %s %v %q %q", r.method, r.query, r.body, r.header.Get("Content-Type"))
	}
	ts, nonce := r.header.Get("X-Timestamp"), r.header.Get("X-Nonce")
	if ts != strconv.FormatInt(fixedNow.UnixMilli(), 10) || len(nonce) != 32 || r.header.Get("X-App-Key") != "app-1" || r.header.Get("X-Sign-Method") != "hmac-sha256" {
		t.Errorf("signing headers %v", r.header)
	}
	bh := sha256.Sum256([]byte(body))
	mac := hmac.New(sha256.New, []byte("sec"))
	mac.Write([]byte(strings.Join([]string{"POST", "/api/v1/verify/qr", "app-1", ts, nonce, hex.EncodeToString(bh[:])}, "\n")))
	if r.header.Get("X-Signature") != hex.EncodeToString(mac.Sum(nil)) {
		t.Error("X-Signature is not the canonical HMAC")
	}
	var names []string
	for k := range r.header {
		names = append(names, k)
	}
	sort.Strings(names)
	want := "Accept-Encoding,Content-Length,Content-Type,User-Agent,X-App-Key,X-Nonce,X-Sentinel-Device,X-Sentinel-Passage,X-Sentinel-Venue,X-Sign-Method,X-Signature,X-Timestamp"
	if strings.Join(names, ",") != want {
		t.Errorf("headers %v, want %s", names, want)
	}
}

func TestSortedSchemeForm(t *testing.T) {
	u, got := capture(t, `{}`)
	m := loadMapping(t, "vendor-sorted")
	sendQR(t, u, m, signer(t, m, "vendor-secret"))
	r := <-got
	if r.header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.header.Get("X-Signature") != "" {
		t.Fatalf("content type %q, X-Signature %q", r.header.Get("Content-Type"), r.header.Get("X-Signature"))
	}
	form, err := url.ParseQuery(string(r.body))
	if err != nil {
		t.Fatal(err)
	}
	want := "appId=app-1&nonceStr=" + form.Get("nonceStr") + "&qrCode=HC-TOKEN-1&timestamp=" + strconv.FormatInt(fixedNow.UnixMilli(), 10) + "&key=vendor-secret"
	sum := sha256.Sum256([]byte(want))
	if form.Get("sign") != strings.ToUpper(hex.EncodeToString(sum[:])) || len(form) != 5 {
		t.Errorf("form %v: sign is not SHA-256 of %q", form, want)
	}
}

func TestMD5TemplateSchemeHeader(t *testing.T) {
	u, got := capture(t, `{}`)
	m := loadMapping(t, "vendor-md5")
	sendQR(t, u, m, signer(t, m, "md5-secret"))
	r := <-got
	ts := strconv.FormatInt(fixedNow.Unix(), 10)
	sum := md5.Sum([]byte("app-1" + ts + "md5-secret" + string(r.body)))
	if string(r.body) != `{"qrcode":"HC-TOKEN-1"}` || r.header.Get("timestamp") != ts || r.header.Get("appKey") != "app-1" || r.header.Get("sign") != hex.EncodeToString(sum[:]) {
		t.Errorf("body %s headers %v", r.body, r.header)
	}
	if r.header.Get("deptCode") != "gate-01" || r.header.Get("areaCode") != "v-1" || r.header.Get("X-Nonce") != "" {
		t.Errorf("unit headers %v", r.header)
	}
}

func TestSHA256QuerySchemeGET(t *testing.T) {
	u, got := capture(t, `{}`)
	m := loadMapping(t, "vendor-sha256")
	sendQR(t, u, m, signer(t, m, "city-secret"))
	r := <-got
	ts := fixedNow.In(time.FixedZone("", 8*3600)).Format("20060102150405") // 20261125160000
	sum := sha256.Sum256([]byte("app-1" + "city-secret" + ts))
	if r.method != "GET" || len(r.body) != 0 || r.query.Get("code") != "HC-TOKEN-1" || r.query.Get("timestamp") != ts || r.query.Get("appId") != "app-1" || r.query.Get("sign") != hex.EncodeToString(sum[:]) {
		t.Errorf("%s %v body %q", r.method, r.query, r.body)
	}
	if ts != "20261125160000" {
		t.Errorf("timestamp %s, want China Standard Time", ts)
	}
}

func TestSM2SortedSchemeBody(t *testing.T) {
	u, got := capture(t, `{}`)
	m := loadMapping(t, "vendor-sm2")
	keyPEM, priv := sm2Pair(t)
	sendQR(t, u, m, signer(t, m, string(keyPEM)))
	r := <-got
	var body map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(body[k], &s)
		return s
	}
	want := "appId=app-1&data=" + string(body["data"]) + "&nonceStr=" + str("nonceStr") + "&signType=SM2&timestamp=" + strconv.FormatInt(fixedNow.UnixMilli(), 10)
	if string(body["data"]) != `{"qrCode":"HC-TOKEN-1"}` {
		t.Errorf("data %s", body["data"])
	}
	der, err := base64.StdEncoding.DecodeString(str("signData"))
	if err != nil || !sm2.VerifyASN1WithSM2(&priv.PublicKey, nil, []byte(want), der) {
		t.Errorf("signData does not verify over %q (%v)", want, err)
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !slices.Equal(keys, []string{"appId", "data", "nonceStr", "signData", "signType", "timestamp"}) {
		t.Errorf("body fields %v", keys)
	}
}

// The sm2 private key in signing.key_file, and the app secret appended to the sorted string
// (the medical-insurance variant): both are used.
func TestSM2KeyFileWithSecretSuffix(t *testing.T) {
	dir := t.TempDir()
	keyPEM, priv := sm2Pair(t)
	writeFile(t, dir+"/unit-sm2.pem", string(keyPEM))
	y := strings.Replace(readMapping(t, "vendor-sm2"), "  exclude: [encData, extra]\n", "  exclude: [encData, extra]\n  suffix: \"&key=${secret}\"\n  key_file: unit-sm2.pem\n", 1)
	writeFile(t, dir+"/m.yaml", y)
	m, err := verify.LoadMapping(dir + "/m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	u, got := capture(t, `{}`)
	sendQR(t, u, m, signer(t, m, "app-secret"))
	r := <-got
	var body map[string]string
	_ = json.Unmarshal(r.body, &body) // data is an object: left out here
	want := `appId=app-1&data={"qrCode":"HC-TOKEN-1"}&nonceStr=` + body["nonceStr"] + "&signType=SM2&timestamp=" + body["timestamp"] + "&key=app-secret"
	der, _ := base64.StdEncoding.DecodeString(body["signData"])
	if !sm2.VerifyASN1WithSM2(&priv.PublicKey, nil, []byte(want), der) {
		t.Errorf("signData does not verify over %q", want)
	}
}

// A ping carries no body, whatever its method, and is signed like every request; a
// sorted scheme's fields go in a GET ping's query.
func TestPingRequest(t *testing.T) {
	post := strings.Replace(string(verify.ReferenceMappingYAML()), "ping:   {method: GET,  path: /api/v1/ping}", "ping:   {method: POST, path: /api/v1/ping}", 1)
	pm, err := verify.ParseMapping([]byte(post))
	if err != nil {
		t.Fatal(err)
	}
	sorted := loadMapping(t, "vendor-sorted")
	for _, tt := range []struct {
		name string
		m    *verify.Mapping
		get  bool
	}{{"reference GET", verify.ReferenceMapping(), true}, {"POST", pm, false}, {"sorted GET", sorted, true}} {
		u, got := capture(t, `{}`)
		s := signer(t, tt.m, "sec")
		c := verify.NewClient(verify.ClientOptions{URL: u, Timeout: time.Second, Mapping: tt.m, Signer: s})
		_, _ = c.Ping(context.Background())
		r := <-got
		if len(r.body) != 0 || r.header.Get("Content-Type") != "" || (r.method == "GET") != tt.get {
			t.Errorf("%s: %s body %q content type %q", tt.name, r.method, r.body, r.header.Get("Content-Type"))
		}
		if tt.m == sorted {
			if r.query.Get("sign") == "" || r.query.Get("appId") != "app-1" {
				t.Errorf("%s: query %v", tt.name, r.query)
			}
		} else if r.header.Get("X-Signature") == "" || len(r.query) != 0 {
			t.Errorf("%s: headers %v query %v", tt.name, r.header, r.query)
		}
	}
}
