package platform

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"github.com/sentinel-edge/sentinel/sim/population"
)

// The vendor dialects' signature checks, with requests signed here by hand: a good one, a
// second unit's app key, a wrong secret, a stale timestamp, a replayed nonce, a missing
// field.

func vendorServer(t *testing.T, dialect string, pub *sm2.PrivateKey) (*Server, *bytes.Buffer) {
	t.Helper()
	pop, _ := testPopulation(t)
	sg := &Signing{AppKey: "unit-1", Secret: []byte("sec-1"), Keys: map[string]Key{"unit-2": {Secret: []byte("sec-2")}}}
	if pub != nil {
		sg.SM2Public = &pub.PublicKey
	}
	var log bytes.Buffer
	return NewServer(pop, Options{Now: func() time.Time { return testNow }, Dialect: dialect, Signing: sg, RequestLog: &log}), &log
}

func serve(h http.Handler, req *http.Request) (int, map[string]any) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var a map[string]any
	dec := json.NewDecoder(rec.Body)
	dec.UseNumber()
	_ = dec.Decode(&a)
	return rec.Code, a
}

func hexSHA256(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }

func TestVendorSortedSignature(t *testing.T) {
	h, log := vendorServer(t, DialectVendorSorted, nil)
	ms := strconv.FormatInt(testNow.UnixMilli(), 10)
	req := func(app, secret, ts, nonce string, drop string) *http.Request {
		f := url.Values{"qrCode": {population.TokenGreenFresh}, "appId": {app}, "timestamp": {ts}, "nonceStr": {nonce}, "empty": {""}}
		s := "appId=" + app + "&nonceStr=" + nonce + "&qrCode=" + population.TokenGreenFresh + "&timestamp=" + ts + "&key=" + secret
		f.Set("sign", strings.ToUpper(hexSHA256(s)))
		f.Del(drop)
		r := httptest.NewRequest("POST", SortedPathQR, strings.NewReader(f.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	tests := []struct {
		name string
		r    *http.Request
		code string
	}{
		{"valid", req("unit-1", "sec-1", ms, "n1", ""), "0"},
		{"second unit", req("unit-2", "sec-2", ms, "n2", ""), "0"},
		{"replayed nonce", req("unit-1", "sec-1", ms, "n1", ""), "4002"},
		{"wrong secret", req("unit-1", "sec-2", ms, "n3", ""), "4001"},
		{"unknown app key", req("unit-9", "sec-1", ms, "n4", ""), "4001"},
		{"stale", req("unit-1", "sec-1", strconv.FormatInt(testNow.Add(-time.Hour).UnixMilli(), 10), "n5", ""), "4002"},
		{"no nonce", req("unit-1", "sec-1", ms, "n6", "nonceStr"), "4001"},
	}
	for _, tt := range tests {
		st, a := serve(h, tt.r)
		if st != 200 || a["code"].(json.Number).String() != tt.code {
			t.Errorf("%s: %d %v, want 200 code %s", tt.name, st, a["code"], tt.code)
		}
	}
	// The answer lists the tests oldest first, times in Unix milliseconds, the colour a word.
	_, a := serve(h, req("unit-1", "sec-1", ms, "n7", ""))
	d := a["data"].(map[string]any)
	list := d["nucleicList"].([]any)
	last := list[len(list)-1].(map[string]any)["sampleTime"].(json.Number).String()
	if d["healthColor"] != "绿码" || len(list) != 3 || last != strconv.FormatInt(testNow.Add(-6*time.Hour).UnixMilli(), 10) {
		t.Errorf("answer data %v", d)
	}
	if strings.Contains(log.String(), population.TokenGreenFresh) {
		t.Error("the request log carries a token")
	}
}

func TestVendorMD5Signature(t *testing.T) {
	h, _ := vendorServer(t, DialectVendorMD5, nil)
	body := `{"qrcode":"` + population.TokenGreenFresh + `"}`
	s := strconv.FormatInt(testNow.Unix(), 10)
	req := func(app, secret, ts string) *http.Request {
		r := httptest.NewRequest("POST", MD5PathQR, strings.NewReader(body))
		sum := md5.Sum([]byte(app + ts + secret + body))
		r.Header.Set("appKey", app)
		r.Header.Set("timestamp", ts)
		r.Header.Set("sign", hex.EncodeToString(sum[:]))
		return r
	}
	for _, tt := range []struct {
		name   string
		r      *http.Request
		status int
	}{
		{"valid", req("unit-1", "sec-1", s), 200},
		{"again: no nonce, so no replay refusal", req("unit-1", "sec-1", s), 200},
		{"second unit", req("unit-2", "sec-2", s), 200},
		{"wrong secret", req("unit-1", "sec-x", s), 401},
		{"stale", req("unit-1", "sec-1", strconv.FormatInt(testNow.Add(-10*time.Minute).Unix(), 10)), 401},
	} {
		if st, a := serve(h, tt.r); st != tt.status || a["status"] != strconv.Itoa(tt.status) {
			t.Errorf("%s: %d %v, want %d", tt.name, st, a["status"], tt.status)
		}
	}
	r := httptest.NewRequest("POST", MD5PathQR, strings.NewReader(`{"qrcode":"`+population.TokenUnknown+`"}`))
	sum := md5.Sum([]byte("unit-1" + s + "sec-1" + `{"qrcode":"` + population.TokenUnknown + `"}`))
	r.Header.Set("appKey", "unit-1")
	r.Header.Set("timestamp", s)
	r.Header.Set("sign", hex.EncodeToString(sum[:]))
	if st, a := serve(h, r); st != 404 || a["status"] != "404" {
		t.Errorf("unknown token: %d %v", st, a)
	}
}

func TestVendorSHA256Signature(t *testing.T) {
	h, _ := vendorServer(t, DialectVendorSHA256, nil)
	ts := testNow.In(cst).Format(SHA256TimeLayout)
	req := func(method, app, secret, ts string) *http.Request {
		q := url.Values{"code": {population.TokenGreenFresh}, "appId": {app}, "timestamp": {ts}, "sign": {hexSHA256(app + secret + ts)}}
		return httptest.NewRequest(method, SHA256PathQR+"?"+q.Encode(), nil)
	}
	for _, tt := range []struct {
		name, method string
		r            *http.Request
		status       int
		code         string
	}{
		{"valid", "GET", req("GET", "unit-1", "sec-1", ts), 200, SHA256OK},
		{"second unit", "GET", req("GET", "unit-2", "sec-2", ts), 200, SHA256OK},
		{"wrong secret", "GET", req("GET", "unit-1", "sec-2", ts), 403, SHA256BadSign},
		{"stale", "GET", req("GET", "unit-1", "sec-1", testNow.Add(-time.Hour).In(cst).Format(SHA256TimeLayout)), 403, SHA256Stale},
		{"timestamp in UTC, not CST", "GET", req("GET", "unit-1", "sec-1", testNow.UTC().Format(SHA256TimeLayout)), 403, SHA256Stale},
		{"POST to a GET endpoint", "POST", req("POST", "unit-1", "sec-1", ts), 405, "405000"},
	} {
		if st, a := serve(h, tt.r); st != tt.status || a["retCode"] != tt.code {
			t.Errorf("%s: %d %v, want %d %s", tt.name, st, a["retCode"], tt.status, tt.code)
		}
	}
	_, a := serve(h, req("GET", "unit-1", "sec-1", ts))
	list := a["result"].(map[string]any)["hsjcList"].([]any)
	if got := list[1].(map[string]any)["cysj"]; got != testNow.Add(-6*time.Hour).In(cst).Format(SHA256TimeLayout) {
		t.Errorf("the newest test is not in the middle: %v", list)
	}
}

func TestVendorSM2Signature(t *testing.T) {
	k, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := sm2.GenerateKey(rand.Reader)
	h, _ := vendorServer(t, DialectVendorSM2, k)
	ms := strconv.FormatInt(testNow.UnixMilli(), 10)
	req := func(key *sm2.PrivateKey, nonce string) *http.Request {
		data := `{"qrCode":"` + population.TokenGreenFresh + `"}`
		str := "appId=unit-1&data=" + data + "&nonceStr=" + nonce + "&timestamp=" + ms
		sig, err := key.Sign(rand.Reader, []byte(str), sm2.DefaultSM2SignerOpts)
		if err != nil {
			t.Fatal(err)
		}
		body := `{"appId":"unit-1","timestamp":"` + ms + `","nonceStr":"` + nonce + `","extra":"x","data":` + data + `,"signData":"` + base64.StdEncoding.EncodeToString(sig) + `"}`
		return httptest.NewRequest("POST", SM2PathQR, strings.NewReader(body))
	}
	for _, tt := range []struct {
		name string
		r    *http.Request
		code string
	}{
		{"valid", req(k, "n1"), "0"},
		{"replayed nonce", req(k, "n1"), "-402"},
		{"another key", req(other, "n2"), "-401"},
	} {
		if st, a := serve(h, tt.r); st != 200 || a["infcode"].(json.Number).String() != tt.code {
			t.Errorf("%s: %d %v, want 200 %s", tt.name, st, a, tt.code)
		}
	}
}

func TestParseSM2PublicKey(t *testing.T) {
	if _, err := ParseSM2PublicKey([]byte("not pem")); err == nil {
		t.Error("parsed garbage")
	}
}
