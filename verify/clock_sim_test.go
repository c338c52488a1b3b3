package verify_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/sim/platform"
	"github.com/sentinel-edge/sentinel/sim/population"
	"github.com/sentinel-edge/sentinel/verify"
)

// TestBootAt1970AgainstSim: a unit whose clock says 1970 talks to the reference platform
// over HTTP with signing on. Its first signed request carries a 1970 timestamp and is refused
// as a replay; from that answer's Date header the client learns the platform's clock, and
// the next request is accepted and decided by the platform's time: the fresh test passes,
// the old one is expired, and the decision says the platform's clock was used.
func TestBootAt1970AgainstSim(t *testing.T) {
	platformNow := simNow
	people := population.Generate(population.GenerateOptions{Now: platformNow, Seed: 7, Random: 0})
	pop, err := population.New(people)
	if err != nil {
		t.Fatal(err)
	}
	log := &syncBuf{}
	srv := httptest.NewServer(platform.NewServer(pop, platform.Options{
		Now: func() time.Time { return platformNow }, RequestLog: log,
		Signing: &platform.Signing{AppKey: appKey, Secret: []byte(secret)},
	}))
	defer srv.Close()
	boot := time.Date(1970, 1, 1, 0, 2, 0, 0, time.UTC)
	unitNow := func() time.Time { return boot }
	untrusted := func() bool { return false }
	s, err := verify.NewSigner(verify.SignHMACSHA256, appKey, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	c := verify.NewClient(verify.ClientOptions{URL: srv.URL, Timeout: 2 * time.Second, Signer: s, Now: unitNow, ClockTrusted: untrusted})
	v := verify.NewVerifier(c, verify.VerifierOptions{Policy: greenPolicy, Budget: 3 * time.Second, Now: unitNow, ClockTrusted: untrusted})

	fresh := verify.Credential{Kind: verify.KindQR, QRToken: population.TokenGreenFresh}
	d := v.Decide(context.Background(), fresh, "p1")
	if d.Reason != verify.ReasonSignatureRejected {
		t.Fatalf("first request from 1970: %s/%s, want signature_rejected (stale timestamp)", d.Verdict, d.Reason)
	}
	if es := log.entries(t); len(es) != 1 || es[0].Signature != platform.SigStale {
		t.Fatalf("platform saw %+v, want one request refused as stale", es)
	}
	d = v.Decide(context.Background(), fresh, "p2")
	if d.Verdict != verify.Pass || d.Reason != verify.ReasonOK || d.TimeSource != verify.TimePlatform {
		t.Fatalf("second request: %s/%s time source %q (err %v), want pass ok by the platform's clock", d.Verdict, d.Reason, d.TimeSource, d.Err)
	}
	if !d.PlatformTime.Equal(platformNow) {
		t.Errorf("platform time %s, want %s", d.PlatformTime, platformNow)
	}
	if d := v.Decide(context.Background(), verify.Credential{Kind: verify.KindQR, QRToken: population.TokenGreenOld}, "p3"); d.Reason != verify.ReasonNATExpired {
		t.Errorf("a 100h-old test by the platform's clock: %s, want nat_expired", d.Reason)
	}
	es := log.entries(t)
	if len(es) != 3 || es[1].Signature != platform.SigOK || es[2].Signature != platform.SigOK {
		t.Errorf("platform saw %+v, want the 2nd and 3rd requests accepted", es)
	}
}

// TestServerTimeField: a mapping may name the answer's own time field; it is read into
// Result.ServerTime, and a value that does not parse is ignored (the Date header serves).
func TestServerTimeField(t *testing.T) {
	y := string(verify.ReferenceMappingYAML())
	y = strings.Replace(y, "  vaccine_last_date: {path: data.vaccine.last_date}\n",
		"  vaccine_last_date: {path: data.vaccine.last_date}\n  server_time: {path: server_time, layout: \"2006-01-02 15:04:05\", utc_offset: \"+08:00\"}\n", 1)
	y = strings.Replace(y, `{"code": "ok", "message": "",`, `{"code": "ok", "message": "", "server_time": "2026-11-25 20:00:00",`, 1)
	m, err := verify.ParseMapping([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	base := `{"code":"ok","request_id":"p-1",%s"data":{"identity":{"match":true},"health_code":"green","nat":null,"vaccine":null}}`
	for _, tt := range []struct {
		name, field string
		want        time.Time
	}{
		{"set", `"server_time":"2026-11-25 20:00:00",`, time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)},
		{"absent", ``, time.Time{}},
		{"garbage", `"server_time":"soon",`, time.Time{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := m.ParseAnswer([]byte(strings.Replace(base, "%s", tt.field, 1)))
			if err != nil {
				t.Fatal(err)
			}
			if !r.ServerTime.Equal(tt.want) {
				t.Errorf("server time %v, want %v", r.ServerTime, tt.want)
			}
		})
	}
}
