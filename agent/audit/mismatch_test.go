package audit

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/queue/queuetest"
	"github.com/sentinel-edge/sentinel/verify"
)

// A decision whose answer was about another person raises an identity_mismatch alert with
// both people masked; a redirected call's row carries the host it pointed to.
func TestMismatchAlertAndRedirectHost(t *testing.T) {
	ob := queuetest.New()
	a := New(Options{Unit: unit, Store: ob, Log: quietLog()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()

	card := verify.Credential{Kind: verify.KindIDCard, IDNumber: "310115196002195076", Name: "王五"}
	call := verify.Call{Interface: verify.KindIDCard, Attempt: 1, Status: 200, RequestID: "p-1", Result: verify.ResultOK, Source: verify.SourceLive, Start: time.Now()}
	d := verify.Decision{Verdict: verify.Deny, Reason: verify.ReasonIdentityMismatch, Mode: verify.ModeOnline, Credential: verify.KindIDCard,
		Subject: verify.Identity{IDNumber: card.IDNumber, Name: card.Name}, Mismatch: &verify.Identity{IDNumber: "440305197204270689", Name: "赵六"},
		PolicyHash: "sha256:x", Call: &call}
	a.Decided(ctx, card, "passage-1", d)
	redirected := verify.Call{Interface: verify.KindQR, Attempt: 1, Status: 307, Result: verify.ResultPlatformError, Source: verify.SourceOffline, RedirectHost: "127.0.0.2:8700", Start: time.Now()}
	a.Decided(ctx, verify.Credential{Kind: verify.KindQR}, "passage-2", verify.Decision{Call: &redirected})

	al := ob.Wait(t, record.StreamAlert, 1, 5*time.Second)[0]
	for _, b := range [][]byte{al.Payload} {
		if strings.Contains(string(b), card.IDNumber) || strings.Contains(string(b), "440305197204270689") || strings.Contains(string(b), "王五") {
			t.Fatalf("the alert carries personal data unmasked: %s", b)
		}
	}
	var got record.Alert
	if err := json.Unmarshal(al.Payload, &got); err != nil {
		t.Fatal(err)
	}
	if got.Kind != record.AlertIdentityMismatch || got.Passage != "passage-1" || got.Subject.ID != "3101**********5076" || got.Subject.Name != "王*" ||
		got.AnswerSubject == nil || got.AnswerSubject.ID != "4403**********0689" || got.Reason != verify.ReasonIdentityMismatch || got.PlatformRequestID != "p-1" ||
		al.Topic != "sentinel/v1/v/d/alert" {
		t.Errorf("alert %+v on %s", got, al.Topic)
	}
	var row record.AuditRow
	for _, e := range ob.Wait(t, record.StreamAudit, 2, 5*time.Second) { // the two jobs may be stored in either order
		var r record.AuditRow
		if json.Unmarshal(e.Payload, &r) == nil && r.Passage == "passage-2" {
			row = r
		}
	}
	if row.RedirectHost != "127.0.0.2:8700" || row.HTTPStatus != 307 || row.Result != verify.ResultPlatformError {
		t.Errorf("redirected call's row %+v", row)
	}
	cancel()
	<-done
}
