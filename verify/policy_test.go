package verify

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	fresh := &NAT{Result: "negative", SampledAt: now.Add(-6 * time.Hour)}
	id := Identity{IDNumber: "x", Name: "y", Match: true}
	p := Policy{HealthCodes: []string{"green"}, NATMaxAge: 72 * time.Hour}
	tests := []struct {
		name        string
		policy      Policy
		r           Result
		wantVerdict string
		wantReason  string
	}{
		{"green fresh", p, Result{Identity: id, HealthCode: "green", NAT: fresh}, Pass, ReasonOK},
		{"yellow", p, Result{Identity: id, HealthCode: "yellow", NAT: fresh}, Deny, ReasonHealthCodeYellow},
		{"red", p, Result{Identity: id, HealthCode: "red", NAT: fresh}, Deny, ReasonHealthCodeRed},
		{"empty colour", p, Result{Identity: id, HealthCode: "", NAT: fresh}, Deny, ReasonHealthCodeUnknown},
		{"purple", p, Result{Identity: id, HealthCode: "purple", NAT: fresh}, Deny, ReasonHealthCodeUnknown},
		{"green not allowed", Policy{HealthCodes: []string{"yellow"}}, Result{Identity: id, HealthCode: "green"}, Deny, ReasonHealthCodeGreen},
		{"yellow allowed", Policy{HealthCodes: []string{"green", "yellow"}, NATMaxAge: 72 * time.Hour}, Result{Identity: id, HealthCode: "yellow", NAT: fresh}, Pass, ReasonOK},
		{"no test", p, Result{Identity: id, HealthCode: "green"}, Deny, ReasonNATMissing},
		{"no sampling time", p, Result{Identity: id, HealthCode: "green", NAT: &NAT{Result: "negative"}}, Deny, ReasonNATMissing},
		{"positive", p, Result{Identity: id, HealthCode: "green", NAT: &NAT{Result: "positive", SampledAt: now.Add(-time.Hour)}}, Deny, ReasonNATPositive},
		{"odd result", p, Result{Identity: id, HealthCode: "green", NAT: &NAT{Result: "pending", SampledAt: now.Add(-time.Hour)}}, Deny, ReasonNATUnknown},
		{"expired", p, Result{Identity: id, HealthCode: "green", NAT: &NAT{Result: "negative", SampledAt: now.Add(-73 * time.Hour)}}, Deny, ReasonNATExpired},
		{"exactly at limit", p, Result{Identity: id, HealthCode: "green", NAT: &NAT{Result: "negative", SampledAt: now.Add(-72 * time.Hour)}}, Pass, ReasonOK},
		{"24h policy, 30h test", Policy{HealthCodes: []string{"green"}, NATMaxAge: 24 * time.Hour}, Result{Identity: id, HealthCode: "green", NAT: &NAT{Result: "negative", SampledAt: now.Add(-30 * time.Hour)}}, Deny, ReasonNATExpired},
		{"future within skew", p, Result{Identity: id, HealthCode: "green", NAT: &NAT{Result: "negative", SampledAt: now.Add(5 * time.Minute)}}, Pass, ReasonOK},
		{"future beyond skew", p, Result{Identity: id, HealthCode: "green", NAT: &NAT{Result: "negative", SampledAt: now.Add(time.Hour)}}, Deny, ReasonNATTimeInvalid},
		{"nat check off", Policy{HealthCodes: []string{"green"}}, Result{Identity: id, HealthCode: "green"}, Pass, ReasonOK},
		{"identity mismatch first", p, Result{Identity: Identity{Match: false}, HealthCode: "red"}, Deny, ReasonIdentityMismatch},
		{"colour before test", p, Result{Identity: id, HealthCode: "red"}, Deny, ReasonHealthCodeRed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, r := tt.policy.Decide(tt.r, now)
			if v != tt.wantVerdict || r != tt.wantReason {
				t.Errorf("Decide = %s/%s, want %s/%s", v, r, tt.wantVerdict, tt.wantReason)
			}
		})
	}
}

func TestPolicyHash(t *testing.T) {
	a := Policy{HealthCodes: []string{"green", "yellow"}, NATMaxAge: 72 * time.Hour}
	b := Policy{HealthCodes: []string{"yellow", "green"}, NATMaxAge: 72 * time.Hour}
	c := Policy{HealthCodes: []string{"green", "yellow"}, NATMaxAge: 48 * time.Hour}
	if a.Hash() != b.Hash() {
		t.Errorf("order of colours changed the hash: %s vs %s", a.Hash(), b.Hash())
	}
	if a.Hash() == c.Hash() {
		t.Errorf("different nat_max_age, same hash %s", a.Hash())
	}
	if len(a.Hash()) != len("sha256:")+16 {
		t.Errorf("hash %q has the wrong length", a.Hash())
	}
}
