package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// The shipped copy of the reference mapping is the embedded one.
func TestReferenceMappingShipped(t *testing.T) {
	b, err := os.ReadFile("../configs/mappings/reference.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, ReferenceMappingYAML()) {
		t.Error("configs/mappings/reference.yaml differs from verify/mappings/reference.yaml: copy it")
	}
	if ReferenceMapping().Name != "reference" {
		t.Error("reference mapping not named reference")
	}
}

func provinceMapping(t testing.TB) *Mapping {
	m, err := LoadMapping("../configs/mappings/province-gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestProvinceMapping(t *testing.T) {
	m := provinceMapping(t)
	body, err := m.BuildRequest(Credential{Kind: KindIDCard, IDNumber: "11010519491231002X", Name: "张三"}, "gate-9", "v")
	if err != nil {
		t.Fatal(err)
	}
	var req map[string]map[string]string
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	if b := req["bizData"]; b["certType"] != "10" || b["certNo"] != "11010519491231002X" || b["certName"] != "张三" || b["deviceCode"] != "gate-9" {
		t.Errorf("bizData %v", b)
	}
	r, err := m.ParseAnswer([]byte(m.Sample))
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC) // 16:00 at +08:00
	if !r.Identity.Match || r.HealthCode != "green" || r.NAT == nil || r.NAT.Result != "negative" || !r.NAT.SampledAt.Equal(want) || r.Vaccine == nil || r.Vaccine.Doses != 3 || r.RequestID != "P2026112508000001" {
		t.Errorf("parsed %+v nat %+v", r, r.NAT)
	}
	tests := []struct {
		name, body string
		wantErr    error
		check      func(Result) bool
	}{
		{"not found is a 200", `{"resultCode":"1004","reqSn":"x"}`, ErrUnknownCredential, nil},
		{"signature code", `{"resultCode":"4010"}`, ErrSignatureRejected, nil},
		{"unknown code", `{"resultCode":"9999"}`, ErrBadResponse, nil},
		{"unknown colour", strings.Replace(m.Sample, `"codeColor": "1"`, `"codeColor": "7"`, 1), nil, func(r Result) bool { return r.HealthCode == "" }},
		{"unknown match value", strings.Replace(m.Sample, `"personMatch": "1"`, `"personMatch": "Y"`, 1), ErrBadResponse, nil},
		{"no test: empty list", strings.Replace(m.Sample, `"nucleicInfo": [{"acidResult": "阴性", "samplingTime": "2026-11-24 16:00:00", "reportTime": "2026-11-24 22:00:00"}]`, `"nucleicInfo": []`, 1), nil, func(r Result) bool { return r.NAT == nil }},
		{"colour is an object", strings.Replace(m.Sample, `"codeColor": "1"`, `"codeColor": {"v":1}`, 1), ErrBadResponse, nil},
		{"bad time", strings.Replace(m.Sample, `2026-11-24 16:00:00`, `2026/11/24`, 1), ErrBadResponse, nil},
		{"doses not a number", strings.Replace(m.Sample, `"vaccinateCount": "3"`, `"vaccinateCount": "three"`, 1), ErrBadResponse, nil},
		{"doses as a JSON number", strings.Replace(m.Sample, `"vaccinateCount": "3"`, `"vaccinateCount": 2`, 1), nil, func(r Result) bool { return r.Vaccine.Doses == 2 }},
		{"result missing", `{"resultCode":"0000"}`, ErrBadResponse, nil},
		{"array", `[1]`, ErrBadResponse, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := m.ParseAnswer([]byte(tt.body))
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if tt.check != nil && !tt.check(r) {
				t.Errorf("result %+v", r)
			}
		})
	}
}

// A mapping that points at nothing is refused with the key named.
func TestMappingProblems(t *testing.T) {
	ref := string(ReferenceMappingYAML())
	tests := []struct{ name, yaml, want string }{
		{"path points at nothing", strings.Replace(ref, "path: data.health_code", "path: data.healthcode", 1), `response.health_code.path "data.healthcode" points at nothing`},
		{"missing endpoint", strings.Replace(ref, "qr:     {method: POST, path: /api/v1/verify/qr}", "", 1), "endpoints.qr.path is required"},
		{"bad placeholder", strings.Replace(ref, "${qr_token}", "${token}", 1), "unknown placeholder ${token}"},
		{"credential not carried", strings.Replace(ref, "qr_token: ${qr_token}", "qr_token: HC-1", 1), "request.qr must carry ${qr_token}"},
		{"bad value map", strings.Replace(ref, "values: {green: green, yellow: yellow, red: red}", "values: {green: verde}", 1), "response.health_code.values must map to green"},
		{"unknown key", ref + "\nextra: 1\n", "line 59: extra: unknown key"},
		{"bad offset", strings.Replace(ref, "nat_sampled_at: {path: data.nat.sampled_at}", "nat_sampled_at: {path: data.nat.sampled_at, utc_offset: CST}", 1), "response.nat_sampled_at.utc_offset"},
		{"face search without a score", strings.Replace(ref, "  score: {path: data.score}\n", "", 1), "response.score.path is required with endpoints.face_search"},
		{"face search without a body", strings.Replace(ref, "  face_search:\n    image_jpeg: ${face_jpeg_base64}\n", "", 1), "request.face_search is required"},
		{"face search body without the face", strings.Replace(ref, "  face_search:\n    image_jpeg: ${face_jpeg_base64}\n", "  face_search:\n    image_jpeg: x\n", 1), "request.face_search must carry ${face_jpeg_base64}"},
		{"negative score scale", strings.Replace(ref, "score: {path: data.score}", "score: {path: data.score, scale: -1}", 1), "response.score.scale must be > 0"},
		{"score points at nothing", strings.Replace(ref, "score: {path: data.score}", "score: {path: data.mark}", 1), `response.score.path "data.mark" points at nothing`},
		{"empty", "", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMapping([]byte(tt.yaml))
			if err == nil || !errors.Is(err, ErrMapping) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one naming %q", err, tt.want)
			}
		})
	}
	if _, err := LoadMapping("/nonexistent/m.yaml"); err == nil || !strings.Contains(err.Error(), "/nonexistent/m.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzMapper: the field mapper never panics on any answer, and what it accepts is
// consistent (a known colour or none; a match it read).
func FuzzMapper(f *testing.F) {
	ref := ReferenceMapping()
	prov := provinceMapping(f)
	f.Add([]byte(ref.Sample), false)
	f.Add([]byte(prov.Sample), true)
	f.Add([]byte(`{"code":"ok","data":{"identity":{"match":1},"health_code":["green"]}}`), false)
	f.Add([]byte(`{"resultCode":"0000","result":{"nucleicInfo":[null,{"acidResult":1}]}}`), true)
	f.Add([]byte(`{"code":"ok","data":{"identity":null}}`), false)
	f.Fuzz(func(t *testing.T, b []byte, province bool) {
		m := ref
		if province {
			m = prov
		}
		r, err := m.ParseAnswer(b)
		if err != nil {
			return
		}
		switch r.HealthCode {
		case "", "green", "yellow", "red":
		default:
			t.Fatalf("accepted colour %q outside the value map", r.HealthCode)
		}
		if r.Vaccine != nil && (r.Vaccine.Doses < 0 || r.Vaccine.Doses > 20) {
			t.Fatalf("doses %d", r.Vaccine.Doses)
		}
	})
}

// FuzzBuildRequest: any credential renders valid JSON that carries it.
func FuzzBuildRequest(f *testing.F) {
	f.Add("HC-1", "11010519491231002X", "张三")
	f.Add("\"}\\", "", "\x00")
	m := ReferenceMapping()
	f.Fuzz(func(t *testing.T, tok, id, name string) {
		b, err := m.BuildRequest(Credential{Kind: KindIDCard, QRToken: tok, IDNumber: id, Name: name}, "d", "v")
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
		if !json.Valid(b) {
			t.Fatal("invalid JSON")
		}
	})
}
