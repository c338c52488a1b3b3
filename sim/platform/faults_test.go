package platform

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/sim/population"
)

func TestParseFault(t *testing.T) {
	for _, s := range []string{"ok", "hang", "5xx", "malformed", "bad_signature", "drop", "latency 300ms", "latency:1s"} {
		if _, err := ParseFault(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "slow", "latency", "latency -1s", "hang 3s", "latency 2h"} {
		if _, err := ParseFault(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if _, err := ParseScript([]byte("ok\n# comment\n\nbogus\n")); err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("script error %v does not name line 4", err)
	}
}

func TestFileScriptRestartsOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "faults")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("5xx\nok\n")
	fs, err := NewFileScript(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := 0; i < 3; i++ {
		got = append(got, fs.Next().Kind)
	}
	write("hang\n")
	got = append(got, fs.Next().Kind, fs.Next().Kind)
	write("nonsense\n")
	got = append(got, fs.Next().Kind)
	if strings.Join(got, ",") != "5xx,ok,ok,hang,hang,hang" || fs.Err() == nil {
		t.Errorf("faults %v (err %v)", got, fs.Err())
	}
}

// sign computes a reference signature here, by the spec's words, for the server to check.
func sign(method, path, key, ts, nonce string, body []byte, secret string) string {
	bh := sha256.Sum256(body)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strings.Join([]string{method, path, key, ts, nonce, hex.EncodeToString(bh[:])}, "\n")))
	return hex.EncodeToString(m.Sum(nil))
}

func TestSignatureCheck(t *testing.T) {
	pop, _ := testPopulation(t)
	var log bytes.Buffer
	h := NewServer(pop, Options{Now: func() time.Time { return testNow }, Signing: &Signing{AppKey: "k", Secret: []byte("sec")}, RequestLog: &log})
	body := []byte(`{"qr_token":"HC-GREEN-FRESH"}`)
	ts := strconv.FormatInt(testNow.UnixMilli(), 10)
	do := func(key, ts, nonce, sig, alg string) (int, string) {
		req := httptest.NewRequest("POST", PathQR, bytes.NewReader(body))
		for k, v := range map[string]string{"X-App-Key": key, "X-Timestamp": ts, "X-Nonce": nonce, "X-Signature": sig, "X-Sign-Method": alg} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var a Answer
		_ = json.Unmarshal(rec.Body.Bytes(), &a)
		return rec.Code, a.Code
	}
	good := sign("POST", PathQR, "k", ts, "n1", body, "sec")
	old := strconv.FormatInt(testNow.Add(-time.Hour).UnixMilli(), 10)
	tests := []struct {
		name, key, ts, nonce, sig, alg string
		status                         int
		code                           string
	}{
		{"valid", "k", ts, "n1", good, "hmac-sha256", 200, CodeOK},
		{"replayed nonce", "k", ts, "n1", good, "hmac-sha256", 401, CodeReplay},
		{"missing", "", "", "", "", "", 401, CodeBadSignature},
		{"wrong key", "other", ts, "n2", sign("POST", PathQR, "other", ts, "n2", body, "sec"), "hmac-sha256", 401, CodeBadSignature},
		{"wrong secret", "k", ts, "n3", sign("POST", PathQR, "k", ts, "n3", body, "nope"), "hmac-sha256", 401, CodeBadSignature},
		{"sm3 header for a sha256 signature", "k", ts, "n4", sign("POST", PathQR, "k", ts, "n4", body, "sec"), "sm3-hmac", 401, CodeBadSignature},
		{"stale", "k", old, "n5", sign("POST", PathQR, "k", old, "n5", body, "sec"), "hmac-sha256", 401, CodeReplay},
	}
	for _, tt := range tests {
		if st, code := do(tt.key, tt.ts, tt.nonce, tt.sig, tt.alg); st != tt.status || code != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.name, st, code, tt.status, tt.code)
		}
	}
	if n := strings.Count(log.String(), "\n"); n != len(tests) {
		t.Errorf("request log has %d lines for %d requests", n, len(tests))
	}
	if strings.Contains(log.String(), "HC-GREEN-FRESH") {
		t.Error("request log carries a token")
	}
}

func TestProvinceDialect(t *testing.T) {
	pop, people := testPopulation(t)
	h := NewServer(pop, Options{Now: func() time.Time { return testNow }, Dialect: DialectProvince})
	fresh := personByToken(t, people, population.TokenGreenFresh)
	post := func(path, body string) (int, ProvinceAnswer, http.Header) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", path, strings.NewReader(body)))
		var a ProvinceAnswer
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Fatalf("%s: not JSON", path)
		}
		return rec.Code, a, rec.Header()
	}
	st, a, hdr := post(ProvincePathQR, `{"bizData":{"qrCode":"HC-GREEN-FRESH"}}`)
	if st != 200 || a.ResultCode != ProvinceOK || a.Result == nil || a.Result.CodeColor != "1" || a.Result.PersonMatch != "1" ||
		len(a.Result.NucleicInfo) != 1 || a.Result.NucleicInfo[0].AcidResult != "阴性" || a.Result.NucleicInfo[0].SamplingTime != "2026-11-25 10:00:00" ||
		a.Result.VaccineInfo == nil || a.Result.VaccineInfo.VaccinateCount != "3" || hdr.Get("reqSn") != a.ReqSn {
		t.Errorf("qr: %d %+v %+v", st, a, a.Result)
	}
	if st, a, _ = post(ProvincePathQR, `{"bizData":{"qrCode":"HC-UNKNOWN-0001"}}`); st != 200 || a.ResultCode != ProvinceNotFound {
		t.Errorf("unknown: %d %s", st, a.ResultCode)
	}
	if st, a, _ = post(ProvincePathIDCard, `{"bizData":{"certType":"10","certNo":"`+fresh.IDNumber+`","certName":"`+fresh.Name+`"}}`); st != 200 || a.Result.PersonMatch != "1" {
		t.Errorf("idcard: %d %+v", st, a)
	}
	if st, a, _ = post(ProvincePathIDCard, `{"bizData":{"certType":"20","certNo":"x","certName":"y"}}`); st != 400 || a.ResultCode != ProvinceBadRequest {
		t.Errorf("passport: %d %s", st, a.ResultCode)
	}
	if st, _, _ = post(PathQR, `{"qr_token":"HC-RED"}`); st != 404 {
		t.Errorf("reference path on the province dialect: %d", st)
	}
}

func TestFace(t *testing.T) {
	pop, people := testPopulation(t)
	h := NewServer(pop, Options{Now: func() time.Time { return testNow }})
	fresh := personByToken(t, people, population.TokenGreenFresh)
	red := personByToken(t, people, population.TokenRed)
	if FaceID(FaceJPEG(fresh.IDNumber)) != fresh.IDNumber || FaceID([]byte{0xFF, 0xD8, 0xFF}) != "" {
		t.Fatal("FaceID does not read FaceJPEG back")
	}
	b64 := func(b []byte) string { x, _ := json.Marshal(b); return strings.Trim(string(x), `"`) }
	tests := []struct {
		name, body string
		status     int
		match      bool
	}{
		{"face alone", `{"image_jpeg":"` + b64(FaceJPEG(fresh.IDNumber)) + `"}`, 200, true},
		{"face and its id", `{"image_jpeg":"` + b64(FaceJPEG(fresh.IDNumber)) + `","id_number":"` + fresh.IDNumber + `"}`, 200, true},
		{"face of someone else", `{"image_jpeg":"` + b64(FaceJPEG(red.IDNumber)) + `","id_number":"` + fresh.IDNumber + `"}`, 200, false},
		{"unknown face", `{"image_jpeg":"` + b64(FaceJPEG("nobody")) + `"}`, 404, false},
		{"not a jpeg", `{"image_jpeg":"` + b64([]byte("GIF89a")) + `"}`, 400, false},
		{"not base64", `{"image_jpeg":"***"}`, 400, false},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", PathFace, strings.NewReader(tt.body)))
		var a Answer
		_ = json.Unmarshal(rec.Body.Bytes(), &a)
		if rec.Code != tt.status || (a.Data != nil && a.Data.Identity.Match != tt.match) {
			t.Errorf("%s: %d %+v", tt.name, rec.Code, a.Data)
		}
	}
}

// TestFaultOtherPerson: an ID-card request is answered with another person's identity and
// record; an unknown ID number is still not found.
func TestFaultOtherPerson(t *testing.T) {
	pop, people := testPopulation(t)
	h := NewServer(pop, Options{Now: func() time.Time { return testNow }, Faults: Always(Fault{Kind: FaultOtherPerson})})
	red := personByToken(t, people, population.TokenRed)
	ask := func(id, name string) (int, Answer) {
		body, _ := json.Marshal(map[string]string{"id_number": id, "name": name})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", PathIDCard, bytes.NewReader(body)))
		var a Answer
		_ = json.Unmarshal(rec.Body.Bytes(), &a)
		return rec.Code, a
	}
	st, a := ask(red.IDNumber, red.Name)
	if st != http.StatusOK || a.Data == nil {
		t.Fatalf("status %d, answer %+v", st, a)
	}
	if id := a.Data.Identity; id.IDNumber == red.IDNumber || id.IDNumber == "" || !id.Match || a.Data.HealthCode != "green" {
		t.Errorf("answer about %s (match %v, %s), want another, green person", population.Mask(id.IDNumber), id.Match, a.Data.HealthCode)
	}
	if st, _ := ask("11010519491231002X", "某"); st != http.StatusNotFound {
		t.Errorf("unknown ID number: status %d, want 404", st)
	}
}
