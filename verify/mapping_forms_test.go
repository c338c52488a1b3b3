package verify_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/verify"
)

// Bad mappings are refused with the key and the line of the problem.
func TestSigningSectionProblems(t *testing.T) {
	sorted := readMapping(t, "vendor-sorted")
	md5 := readMapping(t, "vendor-md5")
	ref := string(verify.ReferenceMappingYAML())
	tests := []struct {
		name, yaml, key string
		line            int
	}{
		{"unknown algorithm", strings.Replace(sorted, "algorithm: sha256", "algorithm: sha1", 1), "signing.algorithm is an unknown algorithm \"sha1\"", 26},
		{"put target that does not exist", strings.Replace(sorted, "put: body:sign", "put: cookie:sign", 1), "signing.put \"cookie:sign\": \"cookie\" is not a target", 28},
		{"put without a target", strings.Replace(sorted, "put: body:sign", "put: sign", 1), "signing.put \"sign\" is not a target", 28},
		{"unknown placeholder", strings.Replace(md5, "${secret}${body}", "${appSecret}${body}", 1), "signing.template has an unknown placeholder ${appSecret}", 28},
		{"unknown string kind", strings.Replace(sorted, "string: sorted", "string: alphabetical", 1), "signing.string must be one of canonical, sorted, template", 24},
		{"unknown encoding", strings.Replace(sorted, "encoding: hex_upper", "encoding: HEX", 1), "signing.encoding must be one of hex, hex_upper, base64", 27},
		{"digest without the secret", strings.Replace(sorted, "suffix: \"&key=${secret}\"", "suffix: \"&v=1\"", 1), "signing.suffix must hold ${secret}", 25},
		{"signature inside the signed body", strings.Replace(md5, "put: header:sign", "put: body:sign", 1), "signing.put puts the signature in the body, but the template signs ${body}", 31},
		{"two things in one place", strings.Replace(sorted, "nonce: {put: body:nonceStr}", "nonce: {put: body:appId}", 1), "puts body:appId, as signing.nonce.put does", 31},
		{"collides with a request field", strings.Replace(sorted, "put: body:sign", "put: body:qrCode", 1), "puts body field qrCode, which request.qr.qrCode already sets", 28},
		{"unit and layout", strings.Replace(sorted, "unit: ms}", "unit: ms, layout: \"20060102\"}", 1), "signing.timestamp.unit and signing.timestamp.layout exclude each other", 29},
		{"timestamp layout without a verb", strings.Replace(sorted, "unit: ms}", "layout: yyyyMMddHHmmss}", 1), "signing.timestamp.layout \"yyyyMMddHHmmss\" has no time verb", 29},
		{"key file for an hmac", strings.Replace(sorted, "algorithm: sha256", "algorithm: hmac-sha256\n  key_file: k.pem", 1), "signing.key_file is only for algorithm sm2", 27},
		{"unknown signing key", strings.Replace(sorted, "string: sorted", "string: sorted\n  secret: x", 1), "signing.secret: unknown key", 25},
		{"canonical digest", ref + "signing: {algorithm: md5, put: header:X-Signature}\n", "signing.algorithm md5 is a bare digest", 58},
		{"GET with a JSON body", strings.Replace(sorted, "ping:   {method: GET,  path: /health/ping}", "ping:   {method: GET,  path: /health/ping, encoding: json}", 1), "endpoints.ping.encoding is json, but a GET has no body", 9},
		{"unknown encoding of an endpoint", strings.Replace(sorted, "encoding: form}\n  idcard", "encoding: xml}\n  idcard", 1), "endpoints.qr.encoding must be json, form or query", 10},
		{"[] without newest_by", strings.Replace(sorted, "    newest_by: sampleTime\n    values: {阴性", "    values: {阴性", 1), "response.nat_result.newest_by is required", 46},
		{"newest_by without []", strings.Replace(ref, "nat_result:\n    path: data.nat.result", "nat_result:\n    newest_by: t\n    path: data.nat.result", 1), "response.nat_result.newest_by needs a path with []", 45},
		{"layout on a colour", strings.Replace(sorted, "path: data.healthColor", "path: data.healthColor\n    layout: unix_ms", 1), "response.health_code.layout is only for time fields", 45},
		{"offset of a unix time", strings.Replace(sorted, "newest_by: sampleTime, layout: unix_ms}\n  nat_reported", "newest_by: sampleTime, layout: unix_ms, utc_offset: \"+08:00\"}\n  nat_reported", 1), "response.nat_sampled_at.utc_offset has no meaning for a Unix time", 50},
		{"sample value not in the value map", strings.Replace(sorted, `"healthColor": "绿码"`, `"healthColor": "绿色"`, 1), "response.health_code in the sample answer: the value \"绿色\" is not in the value map", 43},
		{"sample time that does not fit", strings.Replace(sorted, `"sampleTime": 1795939200000`, `"sampleTime": 1795939200`, 1), "nat_sampled_at is not a unix_ms time from 2000 to 2100", 46},
		{"sample that is not a success", strings.Replace(sorted, `{"code": 0, "msg"`, `{"code": 1001, "msg"`, 1), "response.code in the sample answer is \"1001\", which is not in response.ok", 33},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify.ParseMapping([]byte(tt.yaml))
			var me *verify.MappingError
			if !errors.As(err, &me) || !errors.Is(err, verify.ErrMapping) {
				t.Fatalf("err %v, want a MappingError", err)
			}
			var found bool
			for _, p := range me.Problems {
				if strings.Contains(p.Msg, tt.key) {
					found = true
					if p.Line != tt.line {
						t.Errorf("problem %q on line %d, want %d", p.Msg, p.Line, tt.line)
					}
					break // the first, by line
				}
			}
			if !found {
				t.Errorf("no problem %q in %v", tt.key, err)
			}
		})
	}
}

// A private key that does not parse is named with its key and line, and so is a key file
// that is missing; the message never quotes the key.
func TestSM2KeyFileProblems(t *testing.T) {
	dir := t.TempDir()
	bad := "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
	writeFile(t, filepath.Join(dir, "bad.pem"), bad)
	y := strings.Replace(readMapping(t, "vendor-sm2"), "  algorithm: sm2\n", "  algorithm: sm2\n  key_file: bad.pem\n", 1)
	writeFile(t, filepath.Join(dir, "m.yaml"), y)
	m, err := verify.LoadMapping(filepath.Join(dir, "m.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	err = m.CheckKeyFile()
	if err == nil || !strings.Contains(err.Error(), "line 28: signing.key_file") || !strings.Contains(err.Error(), "does not parse") || strings.Contains(err.Error(), "AAAA") {
		t.Errorf("bad key: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "bad.pem")); err != nil {
		t.Fatal(err)
	}
	if err := m.CheckKeyFile(); err == nil || !strings.Contains(err.Error(), "signing.key_file") {
		t.Errorf("missing key: %v", err)
	}
	// Without a key file, platform.secret_file is the private key.
	sm := loadMapping(t, "vendor-sm2")
	if _, err := verify.NewMappingSigner(sm, "", "app", []byte("a shared secret, not a key")); err == nil || !strings.Contains(err.Error(), "platform.secret_file") {
		t.Errorf("secret that is not a key: %v", err)
	}
	if _, err := verify.NewMappingSigner(loadMapping(t, "vendor-sorted"), "", "", []byte("s")); err == nil || !strings.Contains(err.Error(), "platform.app_key") {
		t.Errorf("no app key: %v", err)
	}
}

// platform.signing may only agree with the section it is ignored for.
func TestSigningConflict(t *testing.T) {
	m := loadMapping(t, "vendor-md5")
	if err := m.SigningConflict(verify.SignSM3HMAC); err == nil || !strings.Contains(err.Error(), "line 29") {
		t.Errorf("sm3-hmac against md5: %v", err)
	}
	if err := verify.ReferenceMapping().SigningConflict(verify.SignSM3HMAC); err != nil {
		t.Errorf("the reference mapping has no section: %v", err)
	}
	y := string(verify.ReferenceMappingYAML()) + "signing: {algorithm: hmac-sm3, put: header:X-Signature}\n"
	sm, err := verify.ParseMapping([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if err := sm.SigningConflict(verify.SignSM3HMAC); err != nil {
		t.Errorf("sm3-hmac and hmac-sm3 agree: %v", err)
	}
}

// Times as RFC 3339, a Go layout, unix_s or unix_ms, as numbers or strings; a value that
// does not fit is a bad response, never a time.
func TestTimeForms(t *testing.T) {
	const want = "2026-11-29T08:00:00Z"
	tests := []struct {
		name, layout, offset, value string
		ok                          bool
	}{
		{"rfc3339", "", "", `"2026-11-29T16:00:00+08:00"`, true},
		{"rfc3339 keyword", "rfc3339", "", `"2026-11-29T08:00:00Z"`, true},
		{"go layout at +08:00", "2006-01-02 15:04:05", "+08:00", `"2026-11-29 16:00:00"`, true},
		{"compact layout", "20060102150405", "+08:00", `"20261129160000"`, true},
		{"unix_s number", "unix_s", "", `1795939200`, true},
		{"unix_s string", "unix_s", "", `"1795939200"`, true},
		{"unix_ms number", "unix_ms", "", `1795939200000`, true},
		{"unix_ms string", "unix_ms", "", `"1795939200000"`, true},
		{"unix_ms in exponent form", "unix_ms", "", `1.7959392e12`, true},
		{"seconds read as ms", "unix_ms", "", `1795939200`, false},
		{"ms read as seconds", "unix_s", "", `1795939200000`, false},
		{"fraction of a ms", "unix_ms", "", `1795939200000.5`, false},
		{"negative", "unix_s", "", `-1`, false},
		{"text for unix", "unix_s", "", `"yesterday"`, false},
		{"layout mismatch", "2006-01-02 15:04:05", "+08:00", `"2026/11/29 16:00"`, false},
		{"number for rfc3339", "", "", `1795939200`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := "{path: data.t"
			if tt.layout != "" {
				f += ", layout: \"" + tt.layout + "\""
			}
			if tt.offset != "" {
				f += ", utc_offset: \"" + tt.offset + "\""
			}
			y := strings.Replace(unixMsMapping, "{path: data.nat.sampledAt, layout: unix_ms}", f+"}", 1)
			m, err := verify.ParseMapping([]byte(y[:strings.Index(y, "sample:")]))
			if err != nil {
				t.Fatal(err)
			}
			r, err := m.ParseAnswer([]byte(`{"code": 0, "data": {"match": true, "color": 0, "nat": {"result": 1}, "t": ` + tt.value + `, "doses": 1}}`))
			if !tt.ok {
				if !errors.Is(err, verify.ErrBadResponse) {
					t.Errorf("err %v, want a bad response", err)
				}
				return
			}
			if err != nil || r.NAT == nil || r.NAT.SampledAt.UTC().Format(time.RFC3339) != want {
				t.Errorf("nat %+v err %v, want sampled at %s", r.NAT, err, want)
			}
		})
	}
}

// The newest element of an array, whatever its order; values ordered by the time field's
// layout, as numbers, or as text.
func TestNewestBy(t *testing.T) {
	base := strings.Replace(unixMsMapping, "nat_result: {path: data.nat.result,", "nat_result: {path: \"data.tests[].result\", newest_by: at,", 1)
	base = strings.Replace(base, "{path: data.nat.sampledAt, layout: unix_ms}", "{path: \"data.tests[].at\", newest_by: at, LAYOUT}", 1)
	base = base[:strings.Index(base, "sample:")]
	tests := []struct {
		name, layout, tests, wantAt string
		ok                          bool
	}{
		{"oldest first, ms", "layout: unix_ms", `[{"at": 1795334400000, "result": 2}, {"at": 1795939200000, "result": 1}]`, "2026-11-29T08:00:00Z", true},
		{"newest first, ms", "layout: unix_ms", `[{"at": 1795939200000, "result": 1}, {"at": 1795334400000, "result": 2}]`, "2026-11-29T08:00:00Z", true},
		{"newest in the middle, layout", `layout: "20060102150405", utc_offset: "+08:00"`, `[{"at": "20261122160000", "result": 2}, {"at": "20261129160000", "result": 1}, {"at": "20261115160000", "result": 2}]`, "2026-11-29T08:00:00Z", true},
		{"rfc3339 across offsets", `layout: rfc3339`, `[{"at": "2026-11-29T16:00:00+08:00", "result": 1}, {"at": "2026-11-29T07:00:00Z", "result": 2}]`, "2026-11-29T08:00:00Z", true},
		{"empty list: no test", "layout: unix_ms", `[]`, "", true},
		{"an element without the value", "layout: unix_ms", `[{"at": 1795939200000, "result": 1}, {"result": 2}]`, "", false},
		{"an element that does not fit the layout", "layout: unix_ms", `[{"at": 1795939200000, "result": 1}, {"at": "x", "result": 2}]`, "", false},
		{"not an array", "layout: unix_ms", `{"at": 1}`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := verify.ParseMapping([]byte(strings.Replace(base, "LAYOUT", tt.layout, 1)))
			if err != nil {
				t.Fatal(err)
			}
			r, err := m.ParseAnswer([]byte(`{"code": 0, "data": {"match": true, "color": 0, "tests": ` + tt.tests + `, "doses": 1}}`))
			switch {
			case !tt.ok:
				if !errors.Is(err, verify.ErrBadResponse) {
					t.Errorf("err %v, want a bad response", err)
				}
			case err != nil:
				t.Errorf("err %v", err)
			case tt.wantAt == "" && r.NAT != nil:
				t.Errorf("nat %+v, want none", r.NAT)
			case tt.wantAt != "" && (r.NAT == nil || r.NAT.Result != "negative" || r.NAT.SampledAt.UTC().Format(time.RFC3339) != tt.wantAt):
				t.Errorf("nat %+v, want negative at %s", r.NAT, tt.wantAt)
			}
		})
	}
	// Without a time field at that path, numbers order as numbers (9 < 10), not as text.
	y := strings.Replace(unixMsMapping, "nat_result: {path: data.nat.result,", "nat_result: {path: \"data.tests[].result\", newest_by: n,", 1)
	m, err := verify.ParseMapping([]byte(y[:strings.Index(y, "sample:")]))
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.ParseAnswer([]byte(`{"code": 0, "data": {"match": true, "color": 0, "tests": [{"n": 10, "result": 2}, {"n": 9, "result": 1}], "nat": {"sampledAt": 1795939200000}, "doses": 1}}`))
	if err != nil || r.NAT == nil || r.NAT.Result != "positive" {
		t.Errorf("numbers: nat %+v err %v, want the positive of n=10", r.NAT, err)
	}
}

// Codes and colours as numbers or strings, words or digits.
func TestCodeAndColourForms(t *testing.T) {
	m, err := verify.ParseMapping([]byte(strings.Replace(unixMsMapping[:strings.Index(unixMsMapping, "sample:")],
		`values: {"0": green, "1": yellow, "2": red}`, `values: {"0": green, "1": yellow, "2": red, 绿码: green, 黄码: yellow}`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ code, colour, want string }{
		{`0`, `0`, "green"}, {`"0"`, `"0"`, "green"}, {`0`, `"绿码"`, "green"}, {`"0"`, `1`, "yellow"}, {`0`, `"黄码"`, "yellow"}, {`0`, `"紫码"`, ""},
	} {
		r, err := m.ParseAnswer([]byte(`{"code": ` + tt.code + `, "data": {"match": true, "color": ` + tt.colour + `, "doses": 1}}`))
		if err != nil || r.HealthCode != tt.want {
			t.Errorf("code %s colour %s: %q %v, want %q", tt.code, tt.colour, r.HealthCode, err, tt.want)
		}
	}
	if _, err := m.ParseAnswer([]byte(`{"code": "00", "data": {"match": true, "color": 0, "doses": 1}}`)); !errors.Is(err, verify.ErrBadResponse) {
		t.Errorf("code \"00\" is not 0: %v", err)
	}
}

// A platform answer whose time does not fit its layout is denied bad_response, and the
// call is recorded as one: never a pass.
func TestBadTimeDeniedBadResponse(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"code": 0, "data": {"match": true, "color": 0, "nat": {"result": 1, "sampledAt": "2026-11-29 16:00"}, "doses": 3}}`)
	}))
	defer srv.Close()
	m, err := verify.ParseMapping([]byte(strings.ReplaceAll(unixMsMapping, "SAMPLED", "1795939200000")))
	if err != nil {
		t.Fatal(err)
	}
	v := verify.NewVerifier(verify.NewClient(verify.ClientOptions{URL: srv.URL, Timeout: time.Second, Mapping: m}), verify.VerifierOptions{Policy: greenPolicy})
	d := v.Decide(context.Background(), verify.Credential{Kind: verify.KindQR, QRToken: "HC-1"}, "p")
	if d.Verdict != verify.Deny || d.Reason != verify.ReasonBadResponse || d.Call == nil || d.Call.Result != verify.ResultBadResponse {
		t.Errorf("%s/%s call %+v", d.Verdict, d.Reason, d.Call)
	}
}

// ReadFields says, field by field, what the unit reads and what does not resolve.
func TestReadFields(t *testing.T) {
	m := loadMapping(t, "vendor-sorted")
	reads, err := m.ReadFields([]byte(strings.Replace(m.Sample, `"healthColor": "绿码"`, `"healthColor": "蓝码"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]verify.Reading{}
	for _, r := range reads {
		got[r.Key] = r
	}
	if r := got["health_code"]; !r.Present || r.Problem == "" {
		t.Errorf("unknown colour read as %+v", r)
	}
	if r := got["nat_sampled_at"]; r.Value != "2026-11-29T08:00:00Z" || r.Problem != "" {
		t.Errorf("newest test read as %+v", r)
	}
	if r := got["id_number"]; !r.Personal || r.Value != "11010519491231002X" {
		t.Errorf("id number %+v", r.Key)
	}
	if r := got["code"]; r.Value != "ok" {
		t.Errorf("code %+v", r)
	}
	reads, _ = m.ReadFields([]byte(`{"code": 1001, "msg": "not found"}`))
	if len(reads) != 11 || reads[0].Key != "code" || reads[0].Value != "not_found" || reads[2].Present {
		t.Errorf("not found answer read as %+v", reads)
	}
	if _, err := m.ReadFields([]byte(`[1]`)); err == nil {
		t.Error("an array answer was read")
	}
}

// FuzzVendorMappings: the vendor mappings' reader ([] paths with newest_by, Unix times,
// value maps) never panics, and what it accepts is consistent.
func FuzzVendorMappings(f *testing.F) {
	names := []string{"vendor-sorted", "vendor-md5", "vendor-sha256", "vendor-sm2"}
	ms := make([]*verify.Mapping, len(names))
	for i, n := range names {
		ms[i] = loadMapping(f, n)
		f.Add([]byte(ms[i].Sample), uint8(i))
	}
	f.Add([]byte(`{"code":0,"data":{"match":1,"healthColor":"绿码","nucleicList":[{"sampleTime":1},{"sampleTime":"x"},null]}}`), uint8(0))
	f.Add([]byte(`{"retCode":"000000","result":{"nameMatch":"Y","hmColor":"GREEN","hsjcList":[{"cysj":"20261124120000"},{"cysj":20261124120000}]}}`), uint8(2))
	f.Add([]byte(`{"infcode":0,"output":{"psn":{"match":"1"},"hc":{"color":1},"nat_list":{"smpl_time":1}}}`), uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		m := ms[int(which)%len(ms)]
		r, err := m.ParseAnswer(b)
		if _, rerr := m.ReadFields(b); (rerr == nil) != (err == nil || !strings.Contains(err.Error(), "not JSON") && !strings.Contains(err.Error(), "not a JSON object")) {
			t.Fatalf("ReadFields and ParseAnswer disagree on the answer being JSON: %v / %v", rerr, err)
		}
		if err != nil {
			return
		}
		switch r.HealthCode {
		case "", "green", "yellow", "red":
		default:
			t.Fatalf("accepted colour %q outside the value map", r.HealthCode)
		}
		unix := strings.HasPrefix(m.Response.NATSampledAt.Layout, "unix_")
		if r.NAT != nil && !r.NAT.SampledAt.IsZero() && unix && (r.NAT.SampledAt.Year() < 2000 || r.NAT.SampledAt.Year() > 2100) {
			t.Fatalf("accepted a sampling time in %d", r.NAT.SampledAt.Year())
		}
	})
}
