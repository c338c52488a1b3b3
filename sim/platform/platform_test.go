package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/sim/population"
)

var testNow = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)

func testPopulation(t *testing.T) (*population.Population, []population.Person) {
	t.Helper()
	people := population.Generate(population.GenerateOptions{Now: testNow, Seed: 42, Random: 5})
	pop, err := population.New(people)
	if err != nil {
		t.Fatal(err)
	}
	return pop, people
}

func personByToken(t *testing.T, people []population.Person, token string) population.Person {
	t.Helper()
	for _, p := range people {
		if p.QRToken == token {
			return p
		}
	}
	t.Fatalf("token %s not generated", population.Mask(token))
	return population.Person{}
}

var requestIDPattern = regexp.MustCompile(`^p-[0-9a-f]{16}$`)

func TestHandler(t *testing.T) {
	pop, people := testPopulation(t)
	fresh := personByToken(t, people, population.TokenGreenFresh)
	noNAT := personByToken(t, people, population.TokenGreenNoNAT)
	failing := func(*http.Request) error { return errors.New("boom") }

	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		fault      func(*http.Request) error
		wantStatus int
		wantCode   string
		wantData   bool
		check      func(t *testing.T, raw map[string]json.RawMessage, a Answer)
	}{
		{
			name: "qr fresh green", method: "POST", path: PathQR,
			body:       `{"qr_token":"HC-GREEN-FRESH"}`,
			wantStatus: 200, wantCode: CodeOK, wantData: true,
			check: func(t *testing.T, _ map[string]json.RawMessage, a Answer) {
				d := a.Data
				if d.Identity.IDNumber != fresh.IDNumber || d.Identity.Name != fresh.Name || !d.Identity.Match {
					t.Errorf("identity does not match the person on record (match=%v)", d.Identity.Match)
				}
				if d.HealthCode != "green" {
					t.Errorf("health_code = %q", d.HealthCode)
				}
				wantNAT := NAT{Result: "negative", SampledAt: "2026-11-25T02:00:00Z", ReportedAt: "2026-11-25T08:00:00Z"}
				if d.NAT == nil || *d.NAT != wantNAT {
					t.Errorf("nat = %+v, want %+v", d.NAT, wantNAT)
				}
				if d.Vaccine == nil || d.Vaccine.Doses != 3 {
					t.Fatalf("vaccine = %+v, want 3 doses", d.Vaccine)
				}
				if _, err := time.Parse(time.DateOnly, d.Vaccine.LastDate); err != nil {
					t.Errorf("last_date: %v", err)
				}
			},
		},
		{
			name: "qr no test no vaccine", method: "POST", path: PathQR,
			body:       `{"qr_token":"HC-GREEN-NONAT"}`,
			wantStatus: 200, wantCode: CodeOK, wantData: true,
			check: func(t *testing.T, raw map[string]json.RawMessage, a Answer) {
				var data map[string]json.RawMessage
				if err := json.Unmarshal(raw["data"], &data); err != nil {
					t.Fatal(err)
				}
				for _, k := range []string{"nat", "vaccine"} {
					if string(data[k]) != "null" {
						t.Errorf("data.%s = %s, want null", k, data[k])
					}
				}
			},
		},
		{name: "qr old test", method: "POST", path: PathQR, body: `{"qr_token":"HC-GREEN-OLD"}`, wantStatus: 200, wantCode: CodeOK, wantData: true,
			check: func(t *testing.T, _ map[string]json.RawMessage, a Answer) {
				if a.Data.NAT == nil || a.Data.NAT.SampledAt != "2026-11-21T04:00:00Z" || a.Data.NAT.ReportedAt != "2026-11-21T10:00:00Z" {
					t.Errorf("nat = %+v", a.Data.NAT)
				}
			}},
		{name: "qr red", method: "POST", path: PathQR, body: `{"qr_token":"HC-RED"}`, wantStatus: 200, wantCode: CodeOK, wantData: true,
			check: func(t *testing.T, _ map[string]json.RawMessage, a Answer) {
				if a.Data.HealthCode != "red" {
					t.Errorf("health_code = %q", a.Data.HealthCode)
				}
			}},
		{name: "qr positive", method: "POST", path: PathQR, body: `{"qr_token":"HC-GREEN-POS"}`, wantStatus: 200, wantCode: CodeOK, wantData: true,
			check: func(t *testing.T, _ map[string]json.RawMessage, a Answer) {
				if a.Data.NAT == nil || a.Data.NAT.Result != "positive" {
					t.Errorf("nat = %+v", a.Data.NAT)
				}
			}},
		{name: "qr unknown", method: "POST", path: PathQR, body: `{"qr_token":"HC-UNKNOWN-0001"}`, wantStatus: 404, wantCode: CodeNotFound},
		{name: "qr empty token", method: "POST", path: PathQR, body: `{"qr_token":""}`, wantStatus: 400, wantCode: CodeBadRequest},
		{name: "qr no token", method: "POST", path: PathQR, body: `{}`, wantStatus: 400, wantCode: CodeBadRequest},
		{name: "qr not json", method: "POST", path: PathQR, body: `qr_token=HC-RED`, wantStatus: 400, wantCode: CodeBadRequest},
		{name: "qr empty body", method: "POST", path: PathQR, body: ``, wantStatus: 400, wantCode: CodeBadRequest},
		{name: "qr array", method: "POST", path: PathQR, body: `["HC-RED"]`, wantStatus: 400, wantCode: CodeBadRequest},
		{name: "qr wrong type", method: "POST", path: PathQR, body: `{"qr_token":7}`, wantStatus: 400, wantCode: CodeBadRequest},
		{name: "qr trailing data", method: "POST", path: PathQR, body: `{"qr_token":"HC-RED"}{}`, wantStatus: 400, wantCode: CodeBadRequest},
		{name: "qr too big", method: "POST", path: PathQR, body: `{"qr_token":"` + strings.Repeat("A", MaxBodyBytes) + `"}`, wantStatus: 400, wantCode: CodeBadRequest},
		{name: "qr platform failure", method: "POST", path: PathQR, body: `{"qr_token":"HC-GREEN-FRESH"}`, fault: failing, wantStatus: 500, wantCode: CodeInternal},
		{
			name: "idcard match", method: "POST", path: PathIDCard,
			body:       `{"id_number":"` + fresh.IDNumber + `","name":"` + fresh.Name + `"}`,
			wantStatus: 200, wantCode: CodeOK, wantData: true,
			check: func(t *testing.T, _ map[string]json.RawMessage, a Answer) {
				if !a.Data.Identity.Match || a.Data.Identity.IDNumber != fresh.IDNumber {
					t.Errorf("identity match=%v, want true", a.Data.Identity.Match)
				}
			},
		},
		{
			name: "idcard name mismatch", method: "POST", path: PathIDCard,
			body:       `{"id_number":"` + fresh.IDNumber + `","name":"某某某某某"}`,
			wantStatus: 200, wantCode: CodeOK, wantData: true,
			check: func(t *testing.T, _ map[string]json.RawMessage, a Answer) {
				if a.Data.Identity.Match {
					t.Error("match = true for a wrong name")
				}
				if a.Data.Identity.Name != "某某某某某" {
					t.Error("a mismatch must echo the name sent, not the one on record")
				}
			},
		},
		{
			name: "idcard no test", method: "POST", path: PathIDCard,
			body:       `{"id_number":"` + noNAT.IDNumber + `","name":"` + noNAT.Name + `"}`,
			wantStatus: 200, wantCode: CodeOK, wantData: true,
			check: func(t *testing.T, _ map[string]json.RawMessage, a Answer) {
				if a.Data.NAT != nil || a.Data.Vaccine != nil {
					t.Error("nat or vaccine not null")
				}
			},
		},
		{name: "idcard unknown", method: "POST", path: PathIDCard, body: `{"id_number":"11010519491231002X","name":"张三"}`, wantStatus: 404, wantCode: CodeNotFound},
		{name: "idcard no name", method: "POST", path: PathIDCard, body: `{"id_number":"11010519491231002X"}`, wantStatus: 400, wantCode: CodeBadRequest},
		{name: "idcard no id", method: "POST", path: PathIDCard, body: `{"name":"张三"}`, wantStatus: 400, wantCode: CodeBadRequest},
		{name: "idcard platform failure", method: "POST", path: PathIDCard, body: `{"id_number":"11010519491231002X","name":"张三"}`, fault: failing, wantStatus: 500, wantCode: CodeInternal},
		{name: "get on verify", method: "GET", path: PathQR, wantStatus: 405, wantCode: CodeMethodNotAllowed},
		{name: "unknown path", method: "GET", path: "/api/v2/ping", wantStatus: 404, wantCode: CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewServer(pop, Options{Now: func() time.Time { return testNow }, Fault: tt.fault})
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
				t.Fatalf("answer is not a JSON object: %v", err)
			}
			var a Answer
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
				t.Fatal(err)
			}
			if a.Code != tt.wantCode {
				t.Errorf("code = %q, want %q", a.Code, tt.wantCode)
			}
			if !requestIDPattern.MatchString(a.RequestID) || rec.Header().Get(HeaderRequestID) != a.RequestID {
				t.Errorf("request_id = %q (header %q)", a.RequestID, rec.Header().Get(HeaderRequestID))
			}
			if _, ok := raw["message"]; !ok {
				t.Error("message missing from the envelope")
			}
			if _, has := raw["data"]; has != tt.wantData {
				t.Errorf("data present = %v, want %v", has, tt.wantData)
			}
			if tt.check != nil {
				tt.check(t, raw, a)
			}
		})
	}
}

func TestPing(t *testing.T) {
	pop, _ := testPopulation(t)
	srv := httptest.NewServer(NewServer(pop, Options{Now: func() time.Time { return testNow.In(time.FixedZone("CST", 8*3600)) }}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + PathPing)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got, want := strings.TrimSpace(string(body)), `{"code":"ok","server_time":"2026-11-25T08:00:00Z"}`; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
	resp2, err := http.Post(srv.URL+PathPing, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusMethodNotAllowed || resp2.Header.Get("Allow") == "" {
		t.Errorf("POST ping: status %d Allow %q", resp2.StatusCode, resp2.Header.Get("Allow"))
	}
}

func TestRequestIDsUnique(t *testing.T) {
	pop, _ := testPopulation(t)
	h := NewServer(pop, Options{})
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", PathQR, strings.NewReader(`{"qr_token":"HC-RED"}`)))
		id := rec.Header().Get(HeaderRequestID)
		if seen[id] || !requestIDPattern.MatchString(id) {
			t.Fatalf("request %d: id %q repeated or malformed", i, id)
		}
		seen[id] = true
	}
}

func TestFailEvery(t *testing.T) {
	f := FailEvery(3)
	var got []bool
	for i := 0; i < 6; i++ {
		got = append(got, f(nil) != nil)
	}
	want := []bool{false, false, true, false, false, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("FailEvery(3) fails at %v, want %v", got, want)
		}
	}
	if FailEvery(0)(nil) != nil {
		t.Error("FailEvery(0) failed")
	}
}

func TestDelayHonoursClientTimeout(t *testing.T) {
	pop, _ := testPopulation(t)
	srv := httptest.NewServer(NewServer(pop, Options{Delay: time.Hour}))
	defer srv.Close()
	client := &http.Client{Timeout: 100 * time.Millisecond}
	start := time.Now()
	_, err := client.Post(srv.URL+PathQR, "application/json", strings.NewReader(`{"qr_token":"HC-RED"}`))
	if err == nil {
		t.Fatal("got an answer despite the delay")
	}
	if time.Since(start) > 10*time.Second {
		t.Error("client timeout not honoured")
	}
}

func TestCallLogMasksPersonalData(t *testing.T) {
	pop, people := testPopulation(t)
	var logBuf bytes.Buffer
	h := NewServer(pop, Options{Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	fresh := personByToken(t, people, population.TokenGreenFresh)
	bodies := []struct{ path, body string }{
		{PathQR, `{"qr_token":"HC-GREEN-FRESH"}`},
		{PathQR, `{"qr_token":"HC-UNKNOWN-0001"}`},
		{PathIDCard, `{"id_number":"` + fresh.IDNumber + `","name":"` + fresh.Name + `"}`},
	}
	for _, b := range bodies {
		req := httptest.NewRequest("POST", b.path, strings.NewReader(b.body))
		req.Header.Set(HeaderDevice, "unit-7")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	log := logBuf.String()
	for i, secret := range []string{"HC-GREEN-FRESH", "HC-UNKNOWN-0001", fresh.IDNumber, fresh.Name} {
		if strings.Contains(log, secret) {
			t.Errorf("call log contains secret %d unmasked", i)
		}
	}
	if !strings.Contains(log, "device=unit-7") || strings.Count(log, "\n") != len(bodies) {
		t.Errorf("call log has %d lines or lacks the device header", strings.Count(log, "\n"))
	}
}

func TestServe(t *testing.T) {
	pop, _ := testPopulation(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewServer(pop, Options{}).Serve(ctx, ln) }()

	resp, err := http.Get("http://" + ln.Addr().String() + PathPing)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop")
	}
}
