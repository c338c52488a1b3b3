package agent

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// TestReportReadsQueuePayloads writes passages and audit rows through the real outbox (which
// may compress them) and checks the self-check reads them back and finds each kind of gap.
func TestReportReadsQueuePayloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	ob, err := queue.Open(path, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	add := func(stream string, v any) string {
		id := uuid.NewString()
		if _, err := ob.AppendID(ctx, stream, "s/v/d/"+stream, id, func(seq int64, _ string) ([]byte, error) { return json.Marshal(v) }); err != nil {
			t.Fatal(err)
		}
		return id
	}
	now := time.Now().UTC()
	ts := now.Format(tsLayout)
	call := func(passage, purpose, result string) AuditRow {
		return AuditRow{TS: ts, Device: "d", Venue: "v", Interface: "qr", Passage: passage, Purpose: purpose, Attempt: 1,
			HTTPStatus: 200, PlatformRequestID: "p-0123456789abcdef", Signature: verify.SigAccepted, Result: result, Source: verify.SourceLive}
	}
	// A passage with its call; a retried passage; a local deny (no call, fine); an online
	// passage with no call (a gap); a call naming no passage (a gap); a ping (fine).
	p1 := add(StreamPassage, Record{Mode: "online", Reason: "ok", Verdict: "pass", Policy: "sha256:0123456789abcdef"})
	add(StreamAudit, call(p1, PurposePassage, verify.ResultOK))
	p2 := add(StreamPassage, Record{Mode: "online", Reason: "ok", Verdict: "pass"})
	add(StreamAudit, call(p2, PurposePassage, verify.ResultPlatformError))
	add(StreamAudit, call(p2, PurposePassage, verify.ResultOK))
	add(StreamPassage, Record{Mode: "online", Reason: verify.ReasonMalformedScan, Verdict: "deny"})
	gap := add(StreamPassage, Record{Mode: "online", Reason: "health_code_red", Verdict: "deny"})
	orphan := add(StreamAudit, call("", PurposePassage, verify.ResultTimeout))
	add(StreamAudit, call("", PurposePing, verify.ResultOK))
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}

	r, err := ReportCalls(ctx, path, now.Add(-time.Hour), now.Add(time.Hour), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if r.Undecodable != 0 {
		t.Fatalf("%d rows unreadable: the report's payload decoding disagrees with queue/", r.Undecodable)
	}
	if r.Calls != 5 || r.Pings != 1 || r.Failures != 2 || r.FailuresByResult[verify.ResultTimeout] != 1 || r.Passages != 4 {
		t.Errorf("calls %d pings %d failures %d (%v) passages %d", r.Calls, r.Pings, r.Failures, r.FailuresByResult, r.Passages)
	}
	if len(r.WithoutPassage) != 1 || r.WithoutPassage[0] != orphan {
		t.Errorf("calls without a passage %v, want [%s]", r.WithoutPassage, orphan)
	}
	if len(r.OnlineWithoutCall) != 1 || r.OnlineWithoutCall[0] != gap {
		t.Errorf("online without a call %v, want [%s]", r.OnlineWithoutCall, gap)
	}
	if len(r.PerDay) != 1 || r.PerDay[0].Calls != 5 || r.PerDay[0].Day != now.Format(time.DateOnly) {
		t.Errorf("per day %+v", r.PerDay)
	}
	if r.Retention.AuditRows != 5 || r.Retention.AuditPending != 5 || r.Retention.PassageRows != 4 {
		t.Errorf("retention %+v", r.Retention)
	}
	if len(r.Problems()) != 2 {
		t.Errorf("problems %v, want 2", r.Problems())
	}
	// Outside the range: nothing.
	r, err = ReportCalls(ctx, path, now.Add(-3*time.Hour), now.Add(-2*time.Hour), time.UTC)
	if err != nil || r.Calls != 0 || r.Passages != 0 {
		t.Errorf("empty range: %d calls %d passages (%v)", r.Calls, r.Passages, err)
	}
	if _, err := ReportCalls(ctx, filepath.Join(t.TempDir(), "none.db"), now, now, time.UTC); err == nil {
		t.Error("a missing queue file was accepted")
	}
}

// TestAuditQueueNeverBlocks: the decision loop only queues audit rows; past the queue's bound
// they are dropped and counted (AuditLost, and lost in the next row stored), and at shutdown
// the auditor stores what was queued before it returns.
func TestAuditQueueNeverBlocks(t *testing.T) {
	defer func(n int) { auditQueueSize = n }(auditQueueSize)
	auditQueueSize = 2
	path := filepath.Join(t.TempDir(), "queue.db")
	ob, err := queue.Open(path, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	cfg := &config.Config{}
	cfg.Device.ID, cfg.Device.Venue, cfg.Uplink.TopicPrefix = "d", "v", "sentinel/v1"
	d := &Daemon{Cfg: cfg, Log: quietLog(), Outbox: ob}
	au := newAuditor(d)
	d.auditor.Store(au)
	defer d.auditor.Store(nil)
	call := verify.Call{Interface: verify.KindQR, Attempt: 1, Status: 200, Result: verify.ResultOK, Source: verify.SourceLive, Start: time.Now()}
	// Nothing drains yet: two jobs queue, the third is dropped and counted, none waits.
	for _, p := range []string{"p1", "p2", "p3"} {
		d.auditCalls(context.Background(), p, PurposePassage, []verify.Call{call, call})
	}
	if d.AuditLost() != 2 {
		t.Fatalf("AuditLost %d, want 2 (the third job's rows)", d.AuditLost())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // shutting down: run drains what is queued and returns
	au.run(ctx)
	d.auditCalls(context.Background(), "p4", PurposePassage, []verify.Call{call}) // after the drain
	if d.AuditLost() != 3 {
		t.Fatalf("AuditLost %d after a row queued past shutdown, want 3", d.AuditLost())
	}
	entries, err := ob.Pending(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var rows []AuditRow
	for _, e := range entries {
		var r AuditRow
		if e.Stream == StreamAudit && json.Unmarshal(e.Payload, &r) == nil {
			rows = append(rows, r)
		}
	}
	if len(rows) != 4 {
		t.Fatalf("%d audit rows stored, want 4 (two queued jobs of two calls)", len(rows))
	}
	var lost int64
	for _, r := range rows {
		lost += r.Lost
		if r.Passage != "p1" && r.Passage != "p2" {
			t.Errorf("row of passage %q stored", r.Passage)
		}
	}
	if lost != 2 {
		t.Errorf("rows carry lost %d in all, want 2", lost)
	}
}
