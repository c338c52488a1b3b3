package verify

import (
	"context"
	"testing"
	"time"
)

// TestClockUntrusted: a unit whose clock is not trusted (it booted at 1970, or the kernel says
// it is not synchronised) measures the nucleic-acid age against the platform's clock; with
// no platform clock and a clock that is certainly wrong, a policy that needs the age denies
// nat_time_unverifiable; a policy that does not still decides.
func TestClockUntrusted(t *testing.T) {
	platformNow := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	boot := time.Date(1970, 1, 1, 0, 3, 0, 0, time.UTC) // an RTC without a battery
	sampled := func(ago time.Duration) *NAT { return &NAT{Result: "negative", SampledAt: platformNow.Add(-ago)} }
	answer := func(n *NAT, server time.Time) fakeAnswer {
		return fakeAnswer{r: Result{Identity: Identity{IDNumber: "11010519491231002X", Match: true}, HealthCode: "green", NAT: n, ServerTime: server},
			c: Call{Result: ResultOK, Status: 200}}
	}
	const natAge = 72 * time.Hour
	tests := []struct {
		name      string
		unitNow   time.Time
		trusted   bool // what the kernel says
		policyAge time.Duration
		a         fakeAnswer
		verdict   string
		reason    string
		source    string
		platTime  bool // the decision carries the platform's time
	}{
		{"synced clock, fresh test", platformNow, true, natAge, answer(sampled(6*time.Hour), platformNow), Pass, ReasonOK, TimeUnit, false},
		{"1970, platform time, fresh test", boot, true, natAge, answer(sampled(6*time.Hour), platformNow), Pass, ReasonOK, TimePlatform, true},
		{"1970, platform time, old test", boot, false, natAge, answer(sampled(80*time.Hour), platformNow), Deny, ReasonNATExpired, TimePlatform, true},
		{"1970, platform time, test in the future", boot, false, natAge, answer(sampled(-time.Hour), platformNow), Deny, ReasonNATTimeInvalid, TimePlatform, true},
		{"1970, no platform time", boot, false, natAge, answer(sampled(6*time.Hour), time.Time{}), Deny, ReasonNATTimeUnverifiable, TimeUnit, false},
		{"1970, implausible platform time", boot, false, natAge, answer(sampled(6*time.Hour), time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)), Deny, ReasonNATTimeUnverifiable, TimeUnit, false},
		{"1970, no platform time, age check off", boot, false, 0, answer(nil, time.Time{}), Pass, ReasonOK, TimeUnit, false},
		{"1970, no platform time, red first", boot, false, natAge, fakeAnswer{r: Result{Identity: Identity{Match: true}, HealthCode: "red", NAT: sampled(time.Hour)}, c: Call{Result: ResultOK}}, Deny, ReasonHealthCodeRed, TimeUnit, false},
		{"1970, no platform time, no test", boot, false, natAge, answer(nil, time.Time{}), Deny, ReasonNATMissing, TimeUnit, false},
		// An unsynchronised clock 4 days fast would expire a fresh test; the platform's clock
		// decides instead.
		{"unsynced fast clock, platform time", platformNow.Add(96 * time.Hour), false, natAge, answer(sampled(6*time.Hour), platformNow), Pass, ReasonOK, TimePlatform, true},
		{"unsynced fast clock, no platform time", platformNow.Add(96 * time.Hour), false, natAge, answer(sampled(6*time.Hour), time.Time{}), Deny, ReasonNATExpired, TimeUnit, false},
		{"synced fast clock trusted", platformNow.Add(96 * time.Hour), true, natAge, answer(sampled(6*time.Hour), platformNow), Deny, ReasonNATExpired, TimeUnit, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakePlatform{answers: []fakeAnswer{tt.a}}
			v := NewVerifier(p, VerifierOptions{
				Policy: Policy{HealthCodes: []string{"green"}, NATMaxAge: tt.policyAge},
				Now:    func() time.Time { return tt.unitNow }, ClockTrusted: func() bool { return tt.trusted },
			})
			d := v.Decide(context.Background(), Credential{Kind: KindQR, QRToken: "HC-1"}, "p")
			if d.Verdict != tt.verdict || d.Reason != tt.reason || d.TimeSource != tt.source {
				t.Errorf("got %s/%s time source %q, want %s/%s %q", d.Verdict, d.Reason, d.TimeSource, tt.verdict, tt.reason, tt.source)
			}
			if tt.platTime != !d.PlatformTime.IsZero() || (tt.platTime && !d.PlatformTime.Equal(platformNow)) {
				t.Errorf("platform time %v, want it %v", d.PlatformTime, tt.platTime)
			}
		})
	}
}

// TestClockUntrustedIDNumber: a unit at 1970 does not refuse everyone born since 1970 as an
// impossible birth date; a trusted clock still refuses a birth date in the future.
func TestClockUntrustedIDNumber(t *testing.T) {
	fix := func(id string) string { // give 17 digits their GB 11643 check character
		sum := 0
		for i := 0; i < 17; i++ {
			sum += int(id[i]-'0') * idWeights[i]
		}
		return id[:17] + string(idCheckChars[sum%11])
	}
	card := Credential{Kind: KindIDCard, IDNumber: fix("35058219900101123"), Name: "张三"} // born 1990-01-01
	if err := CheckIDNumber(card.IDNumber, time.Time{}); err != nil {
		t.Fatalf("the test's ID number is invalid: %v", err)
	}
	tests := []struct {
		name    string
		now     time.Time
		trusted bool
		want    string
	}{
		{"1970 clock", time.Date(1970, 1, 1, 0, 0, 5, 0, time.UTC), true, ReasonOK},
		{"trusted clock before the birth", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), true, ReasonOK}, // born 1990: fine
		{"trusted 2026", time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), true, ReasonOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakePlatform{answers: []fakeAnswer{answerAbout(card.IDNumber, true)}}
			v := NewVerifier(p, VerifierOptions{Policy: greenOnly, Now: func() time.Time { return tt.now }, ClockTrusted: func() bool { return tt.trusted }})
			if d := v.Decide(context.Background(), card, "p"); d.Reason != tt.want {
				t.Errorf("reason %s, want %s", d.Reason, tt.want)
			}
		})
	}
	// A birth date after a trusted clock's now is refused; after an untrusted one it is not.
	future := fix("35058220300101123") // born 2030-01-01
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	for _, trusted := range []bool{true, false} {
		v := NewVerifier(&fakePlatform{answers: []fakeAnswer{answerAbout(future, true)}}, VerifierOptions{Policy: greenOnly, Now: func() time.Time { return now }, ClockTrusted: func() bool { return trusted }})
		d := v.Decide(context.Background(), Credential{Kind: KindIDCard, IDNumber: future, Name: "张三"}, "p")
		if want := map[bool]string{true: ReasonInvalidIDNumber, false: ReasonOK}[trusted]; d.Reason != want {
			t.Errorf("birth 2030, clock trusted %v: reason %s, want %s", trusted, d.Reason, want)
		}
	}
}
