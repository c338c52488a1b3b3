package verify

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const okAnswer = `{"code":"ok","request_id":"p-1","data":{"identity":{"id_number":"350582199001011237","name":"张三","match":true},"health_code":"green","nat":{"result":"negative","sampled_at":"2026-11-25T06:00:00Z","reported_at":""},"vaccine":{"doses":3,"last_date":"2022-01-05"}}}`

func TestVerifierAgainstHTTP(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	policy := Policy{HealthCodes: []string{"green"}, NATMaxAge: 72 * time.Hour}
	const timeout = 200 * time.Millisecond
	tests := []struct {
		name        string
		handler     http.HandlerFunc
		token       string
		wantVerdict string
		wantReason  string
		wantMode    string
		wantCall    bool
	}{
		{"pass", answer(200, okAnswer), "HC-1", Pass, ReasonOK, ModeOnline, true},
		{"unknown", answer(404, `{"code":"not_found","request_id":"p-2"}`), "HC-1", Deny, ReasonUnknownCredential, ModeOnline, true},
		{"5xx", answer(500, `{"code":"internal"}`), "HC-1", Deny, ReasonPlatformError, ModeOnline, true},
		{"404 without envelope", answer(404, `nope`), "HC-1", Deny, ReasonPlatformError, ModeOnline, true},
		{"not json", answer(200, `<html>`), "HC-1", Deny, ReasonBadResponse, ModeOnline, true},
		{"missing colour", answer(200, `{"code":"ok","data":{"identity":{"match":true}}}`), "HC-1", Deny, ReasonBadResponse, ModeOnline, true},
		{"wrong type", answer(200, `{"code":"ok","data":{"identity":{"match":"yes"},"health_code":"green"}}`), "HC-1", Deny, ReasonBadResponse, ModeOnline, true},
		{"bad time", answer(200, strings.Replace(okAnswer, "2026-11-25T06:00:00Z", "yesterday", 1)), "HC-1", Deny, ReasonBadResponse, ModeOnline, true},
		{"hang", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // the server notices a gone client only after the body
			<-r.Context().Done()
		}, "HC-1", Deny, ReasonPlatformUnreachable, ModeOffline, true},
		{"malformed scan", answer(200, okAnswer), "HC 1", Deny, ReasonMalformedScan, ModeOnline, false},
		{"control byte", answer(200, okAnswer), "HC-\x01", Deny, ReasonMalformedScan, ModeOnline, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var called atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called.Store(true)
				if r.URL.Path != "/api/v1/verify/qr" || r.Header.Get("X-Sentinel-Device") != "gate-01" || r.Header.Get("X-Sentinel-Passage") != "pid" {
					t.Errorf("request %s %s device=%q passage=%q", r.Method, r.URL.Path, r.Header.Get("X-Sentinel-Device"), r.Header.Get("X-Sentinel-Passage"))
				}
				tt.handler(w, r)
			}))
			defer srv.Close()
			c := NewClient(ClientOptions{URL: srv.URL, Device: "gate-01", Venue: "v", Timeout: timeout})
			v := NewVerifier(c, VerifierOptions{Policy: policy, Now: func() time.Time { return now }})
			start := time.Now()
			d := v.Decide(context.Background(), Credential{Kind: KindQR, QRToken: tt.token}, "pid")
			took := time.Since(start)
			if d.Verdict != tt.wantVerdict || d.Reason != tt.wantReason || d.Mode != tt.wantMode {
				t.Errorf("decision %s/%s/%s, want %s/%s/%s (err %v)", d.Verdict, d.Reason, d.Mode, tt.wantVerdict, tt.wantReason, tt.wantMode, d.Err)
			}
			if called.Load() != tt.wantCall {
				t.Errorf("platform called = %v, want %v", called.Load(), tt.wantCall)
			}
			// The decision is bounded by the configured timeout; allow a generous margin.
			if budget := timeout + 300*time.Millisecond; took > budget {
				t.Errorf("decision took %s, budget %s", took, budget)
			}
			if d.PolicyHash != policy.Hash() {
				t.Errorf("policy hash %q, want %q", d.PolicyHash, policy.Hash())
			}
			if d.Err != nil && strings.Contains(d.Err.Error(), "350582199001011237") {
				t.Errorf("error text carries an unmasked ID number")
			}
		})
	}
}

func TestUnreachablePlatform(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	c := NewClient(ClientOptions{URL: url, Timeout: 200 * time.Millisecond})
	_, _, err := c.Verify(context.Background(), Credential{Kind: KindQR, QRToken: "HC-1"}, "")
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
}

func TestParseAnswerSubject(t *testing.T) {
	r, err := ParseAnswer([]byte(okAnswer))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Identity.Match || r.HealthCode != "green" || r.NAT == nil || r.NAT.SampledAt.IsZero() || r.Vaccine.Doses != 3 {
		t.Errorf("parsed %+v", r.NAT)
	}
}

func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func FuzzParseAnswer(f *testing.F) {
	f.Add([]byte(okAnswer))
	f.Add([]byte(`{"code":"ok","data":null}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseAnswer(b)
		if err == nil && r.Identity.Match && r.HealthCode == "" && !strings.Contains(string(b), "health_code") {
			t.Errorf("accepted an answer without a colour")
		}
	})
}
