package verify_test

import (
	"context"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/sim/platform"
	"github.com/sentinel-edge/sentinel/sim/population"
	"github.com/sentinel-edge/sentinel/verify"
)

// TestOtherPersonAnswer (issue #11, finding 3) against the reference platform and the
// province gateway: with the other_person fault, the answer to an ID card (and to a face
// verified with the card) is about someone else with a green code. The passage is denied
// identity_mismatch, the subject is the card holder, and the decision names the other person;
// a QR token's identity stays the platform's.
func TestOtherPersonAnswer(t *testing.T) {
	for _, dialect := range []string{platform.DialectReference, platform.DialectProvince} {
		t.Run(dialect, func(t *testing.T) {
			e := startSim(t, dialect, true, platform.Fault{Kind: platform.FaultOtherPerson})
			v := verify.NewVerifier(client(t, e, dialect, verify.SignHMACSHA256, 800*time.Millisecond), verify.VerifierOptions{Policy: greenPolicy})
			red := e.person(t, population.TokenRed) // would be denied on their own record
			creds := map[string]verify.Credential{
				"idcard": {Kind: verify.KindIDCard, IDNumber: red.IDNumber, Name: red.Name},
			}
			if dialect == platform.DialectReference { // the province mapping has a face endpoint too, but keep one
				creds["face 1:1"] = verify.Credential{Kind: verify.KindFace, IDNumber: red.IDNumber, FaceJPEG: platform.FaceJPEG(red.IDNumber)}
			}
			for name, cred := range creds {
				d := v.Decide(context.Background(), cred, "pid-"+name)
				if d.Verdict != verify.Deny || d.Reason != verify.ReasonIdentityMismatch || d.Mode != verify.ModeOnline {
					t.Errorf("%s: %s/%s/%s, want deny/identity_mismatch/online (err %v)", name, d.Verdict, d.Reason, d.Mode, d.Err)
				}
				if d.Subject.IDNumber != red.IDNumber {
					t.Errorf("%s: the subject is %s, not the card holder %s", name, population.Mask(d.Subject.IDNumber), population.Mask(red.IDNumber))
				}
				if d.Mismatch == nil || d.Mismatch.IDNumber == "" || d.Mismatch.IDNumber == red.IDNumber {
					t.Errorf("%s: the decision does not name the other person", name)
				}
			}
			d := v.Decide(context.Background(), verify.Credential{Kind: verify.KindQR, QRToken: population.TokenRed}, "pid-qr")
			if d.Verdict != verify.Pass || d.Subject.IDNumber == red.IDNumber || d.Mismatch != nil {
				t.Errorf("qr: %s/%s, subject %s: a QR answer's identity is the platform's", d.Verdict, d.Reason, population.Mask(d.Subject.IDNumber))
			}
		})
	}
}
