package verify

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestDecideVaccineAndIdentity(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	fresh := &NAT{Result: "negative", SampledAt: now.Add(-time.Hour)}
	id := Identity{Match: true}
	two := &Vaccine{Doses: 2}
	tests := []struct {
		name   string
		policy Policy
		r      Result
		want   string
	}{
		{"doses off", Policy{HealthCodes: []string{"green"}}, Result{Identity: id, HealthCode: "green"}, ReasonOK},
		{"enough doses", Policy{HealthCodes: []string{"green"}, MinVaccineDoses: 2}, Result{Identity: id, HealthCode: "green", Vaccine: two}, ReasonOK},
		{"too few doses", Policy{HealthCodes: []string{"green"}, MinVaccineDoses: 3}, Result{Identity: id, HealthCode: "green", Vaccine: two}, ReasonVaccineInsufficient},
		{"no vaccine record", Policy{HealthCodes: []string{"green"}, MinVaccineDoses: 1}, Result{Identity: id, HealthCode: "green"}, ReasonVaccineInsufficient},
		{"test before vaccine", Policy{HealthCodes: []string{"green"}, NATMaxAge: time.Hour, MinVaccineDoses: 3}, Result{Identity: id, HealthCode: "green"}, ReasonNATMissing},
		{"vaccine after fresh test", Policy{HealthCodes: []string{"green"}, NATMaxAge: 72 * time.Hour, MinVaccineDoses: 3}, Result{Identity: id, HealthCode: "green", NAT: fresh, Vaccine: two}, ReasonVaccineInsufficient},
		{"mismatch ignored", Policy{HealthCodes: []string{"green"}, IgnoreIdentityMatch: true}, Result{HealthCode: "green"}, ReasonOK},
		{"mismatch required", Policy{HealthCodes: []string{"green"}}, Result{HealthCode: "green"}, ReasonIdentityMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, r := tt.policy.Decide(tt.r, now); r != tt.want {
				t.Errorf("reason %s, want %s", r, tt.want)
			}
		})
	}
	base := Policy{HealthCodes: []string{"green"}}
	for name, p := range map[string]Policy{
		"version": {HealthCodes: []string{"green"}, Version: "2026-11"}, "doses": {HealthCodes: []string{"green"}, MinVaccineDoses: 1},
		"identity": {HealthCodes: []string{"green"}, IgnoreIdentityMatch: true}, "credentials": {HealthCodes: []string{"green"}, Credentials: []string{"qr"}},
	} {
		if p.Hash() == base.Hash() {
			t.Errorf("changing %s leaves the hash unchanged", name)
		}
	}
}

// fakePlatform answers from a list of (result, call, error) per request.
type fakePlatform struct {
	answers []fakeAnswer
	n       int
}

type fakeAnswer struct {
	r   Result
	c   Call
	err error
}

func (f *fakePlatform) Verify(ctx context.Context, _ Credential, _ string) (Result, Call, error) {
	a := f.answers[min(f.n, len(f.answers)-1)]
	f.n++
	return a.r, a.c, a.err
}

var (
	okGreen  = fakeAnswer{r: Result{Identity: Identity{IDNumber: "11010519491231002X", Match: true}, HealthCode: "green"}, c: Call{Result: ResultOK, Status: 200}}
	timedOut = fakeAnswer{c: Call{Result: ResultTimeout}, err: fmt.Errorf("%w: timed out", ErrUnreachable)}
	refused  = fakeAnswer{c: Call{Result: ResultUnreachable}, err: fmt.Errorf("%w: refused", ErrUnreachable)}
	err503   = fakeAnswer{c: Call{Result: ResultPlatformError, Status: 503}, err: fmt.Errorf("%w: 503", ErrPlatform)}
	err400   = fakeAnswer{c: Call{Result: ResultPlatformError, Status: 400}, err: fmt.Errorf("%w: 400", ErrPlatform)}
)

// TestFallbacks: every offline policy, with and without a cached pass, and the local checks
// that never call.
func TestFallbacks(t *testing.T) {
	qr := Credential{Kind: KindQR, QRToken: "HC-1"}
	idc := Credential{Kind: KindIDCard, IDNumber: "11010519491231002X", Name: "张三"}
	tests := []struct {
		name     string
		offline  string
		warm     *Credential // passed online first
		cred     Credential
		answers  []fakeAnswer
		policy   Policy
		verdict  string
		reason   string
		mode     string
		fallback string
		flagged  bool
		calls    int
		lastSrc  string
	}{
		{"deny", OfflineDeny, nil, qr, []fakeAnswer{timedOut}, greenOnly, Deny, ReasonPlatformUnreachable, ModeOffline, OfflineDeny, false, 1, SourceOffline},
		{"allow_cached miss", OfflineAllowCached, nil, qr, []fakeAnswer{timedOut}, greenOnly, Deny, ReasonOfflineNotCached, ModeOffline, OfflineAllowCached, false, 1, SourceOffline},
		{"allow_cached hit", OfflineAllowCached, &qr, qr, []fakeAnswer{okGreen, timedOut}, greenOnly, Pass, ReasonOfflineCached, ModeOffline, OfflineAllowCached, false, 1, SourceCache},
		{"allow_cached hit by identity", OfflineAllowCached, &qr, idc, []fakeAnswer{okGreen, timedOut}, greenOnly, Pass, ReasonOfflineCached, ModeOffline, OfflineAllowCached, false, 1, SourceCache},
		{"allow_cached other token", OfflineAllowCached, &qr, Credential{Kind: KindQR, QRToken: "HC-2"}, []fakeAnswer{okGreen, timedOut}, greenOnly, Deny, ReasonOfflineNotCached, ModeOffline, OfflineAllowCached, false, 1, SourceOffline},
		{"allow_and_flag", OfflineAllowAndFlag, nil, qr, []fakeAnswer{timedOut}, greenOnly, Pass, ReasonOfflineFlagged, ModeOffline, OfflineAllowAndFlag, true, 1, SourceOffline},
		{"refused then ok: one retry", OfflineDeny, nil, qr, []fakeAnswer{refused, okGreen}, greenOnly, Pass, ReasonOK, ModeOnline, "", false, 2, SourceLive},
		{"503 then ok: one retry", OfflineDeny, nil, qr, []fakeAnswer{err503, okGreen}, greenOnly, Pass, ReasonOK, ModeOnline, "", false, 2, SourceLive},
		{"400: never retried", OfflineDeny, nil, qr, []fakeAnswer{err400, okGreen}, greenOnly, Deny, ReasonPlatformError, ModeOnline, "", false, 1, SourceLive},
		{"timeout: not retried", OfflineAllowAndFlag, nil, qr, []fakeAnswer{timedOut, okGreen}, greenOnly, Pass, ReasonOfflineFlagged, ModeOffline, OfflineAllowAndFlag, true, 1, SourceOffline},
		{"at most one retry", OfflineDeny, nil, qr, []fakeAnswer{err503}, greenOnly, Deny, ReasonPlatformError, ModeOnline, "", false, 2, SourceLive},
		{"bad ID never calls", OfflineAllowAndFlag, nil, Credential{Kind: KindIDCard, IDNumber: "110105194912310021", Name: "张三"}, []fakeAnswer{okGreen}, greenOnly, Deny, ReasonInvalidIDNumber, ModeOnline, "", false, 0, ""},
		{"control byte in name", OfflineDeny, nil, Credential{Kind: KindIDCard, IDNumber: "11010519491231002X", Name: "张\x00"}, []fakeAnswer{okGreen}, greenOnly, Deny, ReasonMalformedScan, ModeOnline, "", false, 0, ""},
		{"credential not accepted", OfflineDeny, nil, idc, []fakeAnswer{okGreen}, Policy{HealthCodes: []string{"green"}, Credentials: []string{KindQR}}, Deny, ReasonCredentialRefused, ModeOnline, "", false, 0, ""},
		// A face-only passage (no ID number) while the platform is away: nobody is identified,
		// so allow_and_flag must not let them in (the re-check would have nothing to check).
		{"face alone, allow_and_flag", OfflineAllowAndFlag, nil, Credential{Kind: KindFace, FaceJPEG: []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 2, 0xFF, 0xD9}}, []fakeAnswer{timedOut}, greenOnly, Deny, ReasonPlatformUnreachable, ModeOffline, OfflineAllowAndFlag, false, 1, SourceOffline},
		{"face alone, allow_cached", OfflineAllowCached, nil, Credential{Kind: KindFace, FaceJPEG: []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 2, 0xFF, 0xD9}}, []fakeAnswer{timedOut}, greenOnly, Deny, ReasonOfflineNotCached, ModeOffline, OfflineAllowCached, false, 1, SourceOffline},
		{"face not a JPEG", OfflineDeny, nil, Credential{Kind: KindFace, FaceJPEG: []byte("GIF89a")}, []fakeAnswer{okGreen}, greenOnly, Deny, ReasonMalformedScan, ModeOnline, "", false, 0, ""},
		{"unknown kind", OfflineDeny, nil, Credential{Kind: "iris"}, []fakeAnswer{okGreen}, greenOnly, Deny, ReasonMalformedScan, ModeOnline, "", false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakePlatform{answers: tt.answers}
			v := NewVerifier(p, VerifierOptions{Policy: tt.policy, Offline: tt.offline, Now: func() time.Time { return time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC) }})
			if tt.warm != nil {
				if d := v.Decide(context.Background(), *tt.warm, "warm"); d.Verdict != Pass {
					t.Fatalf("warm-up: %s", d.Reason)
				}
			}
			d := v.Decide(context.Background(), tt.cred, "p")
			if d.Verdict != tt.verdict || d.Reason != tt.reason || d.Mode != tt.mode || d.Fallback != tt.fallback || d.Flagged != tt.flagged {
				t.Errorf("got %s/%s/%s fallback=%q flagged=%v, want %s/%s/%s fallback=%q flagged=%v", d.Verdict, d.Reason, d.Mode, d.Fallback, d.Flagged, tt.verdict, tt.reason, tt.mode, tt.fallback, tt.flagged)
			}
			calls := d.Calls()
			if len(calls) != tt.calls {
				t.Fatalf("%d calls, want %d", len(calls), tt.calls)
			}
			for i, c := range calls {
				if c.Attempt != i+1 {
					t.Errorf("call %d has attempt %d", i, c.Attempt)
				}
			}
			if tt.calls > 0 && calls[len(calls)-1].Source != tt.lastSrc {
				t.Errorf("last call source %q, want %q", calls[len(calls)-1].Source, tt.lastSrc)
			}
			if tt.calls == 2 && calls[0].Source != SourceRetried {
				t.Errorf("first call source %q, want retried", calls[0].Source)
			}
		})
	}
}

var greenOnly = Policy{HealthCodes: []string{"green"}}

// The cache forgets a pass after the TTL.
func TestCacheTTL(t *testing.T) {
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	p := &fakePlatform{answers: []fakeAnswer{okGreen, timedOut}}
	v := NewVerifier(p, VerifierOptions{Policy: greenOnly, Offline: OfflineAllowCached, CacheTTL: time.Hour, Now: func() time.Time { return now }, ProbeInterval: time.Nanosecond})
	qr := Credential{Kind: KindQR, QRToken: "HC-1"}
	v.Decide(context.Background(), qr, "a")
	now = now.Add(59 * time.Minute)
	if d := v.Decide(context.Background(), qr, "b"); d.Reason != ReasonOfflineCached {
		t.Fatalf("within TTL: %s", d.Reason)
	}
	now = now.Add(2 * time.Minute)
	if d := v.Decide(context.Background(), qr, "c"); d.Reason != ReasonOfflineNotCached {
		t.Fatalf("past TTL: %s", d.Reason)
	}
	for k := range v.cache.entries {
		for _, raw := range []string{"HC-1", "11010519491231002X"} {
			if string(k[:]) == raw {
				t.Fatal("the cache holds a raw credential")
			}
		}
	}
}
