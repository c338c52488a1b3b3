package verify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/sim/platform"
	"github.com/sentinel-edge/sentinel/sim/population"
	"github.com/sentinel-edge/sentinel/verify"
)

// These tests run the real client against the reference platform of sim/platform over real
// HTTP on loopback, with faults injected per request.

var simNow = time.Now().UTC().Truncate(time.Second)

const (
	appKey = "unit-app-key"
	secret = "s3cr3t-shared-with-the-platform"
)

type simEnv struct {
	people []population.Person
	srv    *httptest.Server
	log    *syncBuf
	script *platform.Script
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) entries(t *testing.T) []platform.LogEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var es []platform.LogEntry
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if l == "" {
			continue
		}
		var e platform.LogEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("request log line is not JSON: %v", err)
		}
		es = append(es, e)
	}
	return es
}

func startSim(t *testing.T, dialect string, signed bool, faults ...platform.Fault) *simEnv {
	t.Helper()
	people := population.Generate(population.GenerateOptions{Now: simNow, Seed: 7, Random: 3})
	pop, err := population.New(people)
	if err != nil {
		t.Fatal(err)
	}
	e := &simEnv{people: people, log: &syncBuf{}, script: platform.NewScript(faults...)}
	opts := platform.Options{Dialect: dialect, Faults: e.script, RequestLog: e.log}
	if signed {
		opts.Signing = &platform.Signing{AppKey: appKey, Secret: []byte(secret)}
	}
	e.srv = httptest.NewServer(platform.NewServer(pop, opts))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *simEnv) person(t *testing.T, token string) population.Person {
	for _, p := range e.people {
		if p.QRToken == token {
			return p
		}
	}
	t.Fatalf("no person with token %s", population.Mask(token))
	return population.Person{}
}

func mappingFor(t *testing.T, dialect string) *verify.Mapping {
	t.Helper()
	if dialect == platform.DialectProvince {
		m, err := verify.LoadMapping(filepath.Join("..", "configs", "mappings", "province-gateway.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	return verify.ReferenceMapping()
}

func client(t *testing.T, e *simEnv, dialect, alg string, timeout time.Duration) *verify.Client {
	t.Helper()
	var s *verify.Signer
	if alg != "" {
		var err error
		if s, err = verify.NewSigner(alg, appKey, []byte(secret+"\n")); err != nil {
			t.Fatal(err)
		}
	}
	return verify.NewClient(verify.ClientOptions{URL: e.srv.URL, Device: "gate-01", Venue: "v-1", Timeout: timeout, Mapping: mappingFor(t, dialect), Signer: s})
}

var greenPolicy = verify.Policy{HealthCodes: []string{"green"}, NATMaxAge: 72 * time.Hour}

// TestAgainstBothDialects: the same credentials give the same decisions against the
// reference platform and the province gateway, each through its own mapping, signed with
// each algorithm.
func TestAgainstBothDialects(t *testing.T) {
	for _, dialect := range []string{platform.DialectReference, platform.DialectProvince} {
		for _, alg := range append([]string{""}, verify.SigningAlgorithms...) {
			t.Run(dialect+"/"+alg, func(t *testing.T) {
				e := startSim(t, dialect, alg != "")
				v := verify.NewVerifier(client(t, e, dialect, alg, 800*time.Millisecond), verify.VerifierOptions{Policy: greenPolicy})
				wantSig, serverSig := verify.SigNone, platform.SigOff
				if alg != "" {
					wantSig, serverSig = verify.SigAccepted, platform.SigOK
				}
				decideAll(t, e, v, wantSig)
				for _, le := range e.log.entries(t) {
					if le.Signature != serverSig {
						t.Errorf("request %s %s: server saw signature %q, want %q", le.Interface, le.Passage, le.Signature, serverSig)
					}
				}
			})
		}
	}
}

// TestSignatureRefused: a wrong secret, an unsigned request to a signing platform, and a
// replayed request are refused with signature_rejected, never retried.
func TestSignatureRefused(t *testing.T) {
	e := startSim(t, platform.DialectReference, true)
	wrong, err := verify.NewSigner(verify.SignHMACSHA256, appKey, []byte("not-the-secret"))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*verify.Client{
		"wrong secret": verify.NewClient(verify.ClientOptions{URL: e.srv.URL, Timeout: time.Second, Signer: wrong}),
		"unsigned":     verify.NewClient(verify.ClientOptions{URL: e.srv.URL, Timeout: time.Second}),
		"stale clock": verify.NewClient(verify.ClientOptions{URL: e.srv.URL, Timeout: time.Second, Signer: mustSigner(t),
			Now: func() time.Time { return time.Now().Add(-time.Hour) }}),
	} {
		t.Run(name, func(t *testing.T) {
			v := verify.NewVerifier(c, verify.VerifierOptions{Policy: greenPolicy})
			d := v.Decide(context.Background(), verify.Credential{Kind: verify.KindQR, QRToken: population.TokenGreenFresh}, "p")
			if d.Verdict != verify.Deny || d.Reason != verify.ReasonSignatureRejected || len(d.Calls()) != 1 {
				t.Errorf("%s/%s with %d calls, want deny/signature_rejected with 1 (err %v)", d.Verdict, d.Reason, len(d.Calls()), d.Err)
			}
		})
	}
}

func mustSigner(t *testing.T) *verify.Signer {
	s, err := verify.NewSigner(verify.SignSM3HMAC, appKey, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFaults injects each fault kind through the simulator and checks the verdict, the calls
// made (a retry only where safe), and that the decision came within the budget.
func TestFaults(t *testing.T) {
	const timeout, budget = 300 * time.Millisecond, 400 * time.Millisecond
	const margin = 400 * time.Millisecond // generous: CI machines are slow and -race is on
	f := func(s string) platform.Fault {
		fl, err := platform.ParseFault(s)
		if err != nil {
			t.Fatal(err)
		}
		return fl
	}
	tests := []struct {
		name        string
		faults      []platform.Fault
		offline     string
		wantVerdict string
		wantReason  string
		wantMode    string
		wantResults []string // result class of each call, in order
	}{
		{"none", nil, verify.OfflineDeny, verify.Pass, verify.ReasonOK, verify.ModeOnline, []string{"ok"}},
		{"small latency", []platform.Fault{f("latency 50ms")}, verify.OfflineDeny, verify.Pass, verify.ReasonOK, verify.ModeOnline, []string{"ok"}},
		{"latency past timeout", []platform.Fault{f("latency 2s")}, verify.OfflineDeny, verify.Deny, verify.ReasonPlatformUnreachable, verify.ModeOffline, []string{"timeout"}},
		{"hang", []platform.Fault{f("hang")}, verify.OfflineDeny, verify.Deny, verify.ReasonPlatformUnreachable, verify.ModeOffline, []string{"timeout"}},
		{"hang, allow and flag", []platform.Fault{f("hang")}, verify.OfflineAllowAndFlag, verify.Pass, verify.ReasonOfflineFlagged, verify.ModeOffline, []string{"timeout"}},
		{"hang, allow cached, not cached", []platform.Fault{f("hang")}, verify.OfflineAllowCached, verify.Deny, verify.ReasonOfflineNotCached, verify.ModeOffline, []string{"timeout"}},
		{"5xx once, retried", []platform.Fault{f("5xx"), f("ok")}, verify.OfflineDeny, verify.Pass, verify.ReasonOK, verify.ModeOnline, []string{"platform_error", "ok"}},
		{"5xx twice", []platform.Fault{f("5xx")}, verify.OfflineDeny, verify.Deny, verify.ReasonPlatformError, verify.ModeOnline, []string{"platform_error", "platform_error"}},
		{"malformed JSON, not retried", []platform.Fault{f("malformed"), f("ok")}, verify.OfflineDeny, verify.Deny, verify.ReasonBadResponse, verify.ModeOnline, []string{"bad_response"}},
		{"bad signature, 4xx not retried", []platform.Fault{f("bad_signature"), f("ok")}, verify.OfflineDeny, verify.Deny, verify.ReasonSignatureRejected, verify.ModeOnline, []string{"signature_rejected"}},
		{"drop once, retried", []platform.Fault{f("drop"), f("ok")}, verify.OfflineDeny, verify.Pass, verify.ReasonOK, verify.ModeOnline, []string{"unreachable", "ok"}},
		{"drop twice, offline", []platform.Fault{f("drop")}, verify.OfflineDeny, verify.Deny, verify.ReasonPlatformUnreachable, verify.ModeOffline, []string{"unreachable", "unreachable"}},
		{"5xx then hang, budget bounds the retry", []platform.Fault{f("5xx"), f("hang")}, verify.OfflineDeny, verify.Deny, verify.ReasonPlatformUnreachable, verify.ModeOffline, []string{"platform_error", "timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startSim(t, platform.DialectReference, true, tt.faults...)
			v := verify.NewVerifier(client(t, e, platform.DialectReference, verify.SignHMACSHA256, timeout),
				verify.VerifierOptions{Policy: greenPolicy, Budget: budget, Offline: tt.offline})
			start := time.Now()
			d := v.Decide(context.Background(), verify.Credential{Kind: verify.KindQR, QRToken: population.TokenGreenFresh}, "passage-1")
			took := time.Since(start)
			if d.Verdict != tt.wantVerdict || d.Reason != tt.wantReason || d.Mode != tt.wantMode {
				t.Errorf("decision %s/%s/%s, want %s/%s/%s (err %v)", d.Verdict, d.Reason, d.Mode, tt.wantVerdict, tt.wantReason, tt.wantMode, d.Err)
			}
			var got []string
			for _, c := range d.Calls() {
				got = append(got, c.Result)
			}
			if strings.Join(got, ",") != strings.Join(tt.wantResults, ",") {
				t.Errorf("calls %v, want %v", got, tt.wantResults)
			}
			if took > budget+margin {
				t.Errorf("decision took %s, budget %s (+%s margin)", took, budget, margin)
			}
			if (d.Mode == verify.ModeOffline) != (d.Fallback != "") || d.Flagged != (tt.offline == verify.OfflineAllowAndFlag && d.Mode == verify.ModeOffline) {
				t.Errorf("fallback %q flagged %v for mode %s", d.Fallback, d.Flagged, d.Mode)
			}
			// Every call the client made reached the server's log, and the other way round.
			waitFor(t, func() bool { return len(e.log.entries(t)) >= len(got) })
			if n := len(e.log.entries(t)); n != len(got) {
				t.Errorf("server logged %d requests, the decision reports %d calls", n, len(got))
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBreakerAndCache: a dead platform costs one timeout per probe interval; allow_cached
// passes a person who passed online before; the platform's return closes the breaker.
func TestBreakerAndCache(t *testing.T) {
	faults := t.TempDir() + "/faults"
	if err := os.WriteFile(faults, []byte("ok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	script, err := platform.NewFileScript(faults)
	if err != nil {
		t.Fatal(err)
	}
	people := population.Generate(population.GenerateOptions{Now: simNow, Seed: 7})
	pop, _ := population.New(people)
	log := &syncBuf{}
	srv := httptest.NewServer(platform.NewServer(pop, platform.Options{Faults: script, RequestLog: log}))
	defer srv.Close()
	const timeout, probe = 150 * time.Millisecond, 400 * time.Millisecond
	c := verify.NewClient(verify.ClientOptions{URL: srv.URL, Timeout: timeout})
	v := verify.NewVerifier(c, verify.VerifierOptions{Policy: greenPolicy, Offline: verify.OfflineAllowCached, ProbeInterval: probe, Budget: timeout + 100*time.Millisecond})
	green := verify.Credential{Kind: verify.KindQR, QRToken: population.TokenGreenFresh}
	if d := v.Decide(context.Background(), green, "p1"); d.Reason != verify.ReasonOK {
		t.Fatalf("online: %s", d.Reason)
	}
	if err := os.WriteFile(faults, []byte("hang\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := v.Decide(context.Background(), green, "p2")
	if d.Verdict != verify.Pass || d.Reason != verify.ReasonOfflineCached || d.Call == nil || d.Call.Source != verify.SourceCache {
		t.Fatalf("cached: %s/%s call %+v", d.Verdict, d.Reason, d.Call)
	}
	// The breaker is open now: ten passages cost no call and no timeout.
	start := time.Now()
	for i := 0; i < 10; i++ {
		d := v.Decide(context.Background(), verify.Credential{Kind: verify.KindQR, QRToken: population.TokenRed}, "p3")
		if d.Reason != verify.ReasonOfflineNotCached || d.Call != nil {
			t.Fatalf("breaker open: %s, call %v", d.Reason, d.Call != nil)
		}
	}
	if took := time.Since(start); took > timeout {
		t.Errorf("10 passages with the breaker open took %s, more than one timeout (%s)", took, timeout)
	}
	if v.Online() {
		t.Error("Online() with the breaker open")
	}
	if err := os.WriteFile(faults, []byte("ok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// After the probe interval one passage probes, finds the platform back, and closes it.
	waitFor(t, func() bool {
		d := v.Decide(context.Background(), green, "p4")
		return d.Mode == verify.ModeOnline && d.Reason == verify.ReasonOK
	})
	if !v.Online() {
		t.Error("breaker still open after a good answer")
	}
}
