package verify_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/sim/platform"
	"github.com/sentinel-edge/sentinel/sim/population"
	"github.com/sentinel-edge/sentinel/verify"
)

// TestFaceSearchAgainstSim (issue #12): a face without an ID number is asked on the v3 face
// search of the reference platform; the person found passes by the venue's policy and the
// decision carries the score; an unknown face is face_not_found; a score under
// policy.face_min_score is face_low_score with no subject.
func TestFaceSearchAgainstSim(t *testing.T) {
	e := startSim(t, platform.DialectReference, false)
	green := e.person(t, population.TokenGreenFresh)
	c := client(t, e, platform.DialectReference, "", time.Second)
	pol := greenPolicy
	pol.FaceMinScore = 0.8
	v := verify.NewVerifier(c, verify.VerifierOptions{Policy: pol})

	d := v.Decide(context.Background(), verify.Credential{Kind: verify.KindFace, FaceJPEG: platform.FaceJPEG(green.IDNumber)}, "pid-face-1")
	if d.Verdict != verify.Pass || d.Reason != verify.ReasonOK {
		t.Fatalf("known face: %s/%s (err %v), want pass/ok", d.Verdict, d.Reason, d.Err)
	}
	if d.Subject.IDNumber != green.IDNumber {
		t.Errorf("known face: subject is not the person the platform found")
	}
	if d.FaceScore == nil || *d.FaceScore != 1 {
		t.Errorf("known face: score %v, want 1", d.FaceScore)
	}
	if calls := d.Calls(); len(calls) != 1 || calls[0].Interface != verify.FaceSearch {
		t.Errorf("known face: calls %+v, want one on %s", calls, verify.FaceSearch)
	}

	d = v.Decide(context.Background(), verify.Credential{Kind: verify.KindFace, FaceJPEG: platform.FaceJPEG("110101190001010018")}, "pid-face-2")
	if d.Verdict != verify.Deny || d.Reason != verify.ReasonFaceNotFound || d.Subject.IDNumber != "" {
		t.Errorf("unknown face: %s/%s, want deny/%s and no subject", d.Verdict, d.Reason, verify.ReasonFaceNotFound)
	}

	// A face with the card's number is still the 1:1 check of v2.
	d = v.Decide(context.Background(), verify.Credential{Kind: verify.KindFace, IDNumber: green.IDNumber, FaceJPEG: platform.FaceJPEG(green.IDNumber)}, "pid-face-3")
	if calls := d.Calls(); d.Verdict != verify.Pass || len(calls) != 1 || calls[0].Interface != verify.KindFace {
		t.Errorf("face 1:1: %s/%s calls %+v, want pass on %s", d.Verdict, d.Reason, calls, verify.KindFace)
	}
	for _, le := range e.log.entries(t) {
		if le.Passage == "pid-face-1" && le.Interface != platform.IfaceFaceSearch {
			t.Errorf("the platform logged the face search as %q", le.Interface)
		}
	}
}

// TestFaceSearchV2Mapping: a mapping without endpoints.face_search (a v2 platform) sends a
// face without an ID number to its face endpoint, as before v3.
func TestFaceSearchV2Mapping(t *testing.T) {
	e := startSim(t, platform.DialectProvince, false)
	green := e.person(t, population.TokenGreenFresh)
	v := verify.NewVerifier(client(t, e, platform.DialectProvince, "", time.Second), verify.VerifierOptions{Policy: greenPolicy})
	d := v.Decide(context.Background(), verify.Credential{Kind: verify.KindFace, FaceJPEG: platform.FaceJPEG(green.IDNumber)}, "pid-v2")
	if calls := d.Calls(); d.Verdict != verify.Pass || len(calls) != 1 || calls[0].Interface != verify.KindFace || d.FaceScore != nil {
		t.Errorf("v2 face: %s/%s calls %+v score %v, want pass on %s without a score", d.Verdict, d.Reason, calls, d.FaceScore, verify.KindFace)
	}
}

// TestFaceSearchHostileScores: a face-search answer is judged by its score; one without a
// score, or with one that is not a number from 0 to 1 (after the mapping's scale), is a bad
// response and never a pass.
func TestFaceSearchHostileScores(t *testing.T) {
	const who = `"identity":{"id_number":"11010519491231002X","name":"张三","match":true},"health_code":"green",` +
		`"nat":{"result":"negative","sampled_at":"%s"},"vaccine":{"doses":3}`
	sampled := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name, score string // score: the JSON after `"score":`, or "" for none
		scale       float64
		verdict     string
		reason      string
	}{
		{"good score", "0.93", 0, verify.Pass, verify.ReasonOK},
		{"exactly the minimum", "0.8", 0, verify.Pass, verify.ReasonOK},
		{"low score", "0.42", 0, verify.Deny, verify.ReasonFaceLowScore},
		{"no score", "", 0, verify.Deny, verify.ReasonBadResponse},
		{"null score", "null", 0, verify.Deny, verify.ReasonBadResponse},
		{"score as text", `"high"`, 0, verify.Deny, verify.ReasonBadResponse},
		{"score above 1", "93", 0, verify.Deny, verify.ReasonBadResponse},
		{"negative score", "-0.5", 0, verify.Deny, verify.ReasonBadResponse},
		{"score as object", `{"v":1}`, 0, verify.Deny, verify.ReasonBadResponse},
		{"0-100 with scale", "93", 0.01, verify.Pass, verify.ReasonOK},
		{"0-100 with scale, low", "42", 0.01, verify.Deny, verify.ReasonFaceLowScore},
	}
	refYAML, err := os.ReadFile("../configs/mappings/reference.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := fmt.Sprintf(who, sampled)
			if tt.score != "" {
				data += `,"score":` + tt.score
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != platform.PathFaceSearch {
					http.Error(w, "wrong path "+r.URL.Path, http.StatusNotFound)
					return
				}
				fmt.Fprintf(w, `{"code":"ok","message":"","request_id":"r-1","data":{%s}}`, data)
			}))
			defer srv.Close()
			m, err := verify.ParseMapping(refYAML) // its own copy: the scale is changed
			if err != nil {
				t.Fatal(err)
			}
			m.Response.Score.Scale = tt.scale
			pol := greenPolicy
			pol.FaceMinScore = 0.8
			c := verify.NewClient(verify.ClientOptions{URL: srv.URL, Timeout: time.Second, Mapping: m})
			d := verify.NewVerifier(c, verify.VerifierOptions{Policy: pol}).Decide(context.Background(),
				verify.Credential{Kind: verify.KindFace, FaceJPEG: platform.FaceJPEG("x")}, "p")
			if d.Verdict != tt.verdict || d.Reason != tt.reason {
				t.Errorf("%s/%s (err %v), want %s/%s", d.Verdict, d.Reason, d.Err, tt.verdict, tt.reason)
			}
			if tt.reason == verify.ReasonFaceLowScore && d.Subject.IDNumber != "" {
				t.Error("a low-score match named its subject: the platform's guess is not who stood there")
			}
			if d.Err != nil && strings.Contains(d.Err.Error(), "11010519491231002X") {
				t.Error("the error carries the ID number unmasked")
			}
		})
	}
}
