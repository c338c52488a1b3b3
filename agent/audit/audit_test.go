package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sentinel-edge/sentinel/agent/clock"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var unit = record.Unit{Prefix: "sentinel/v1", Venue: "v", Device: "d"}

// runScan runs a fresh auditor's start-up scan over path's outbox, storing alerts into ob,
// and waits until it ended.
func runScan(t testing.TB, ob *queue.Outbox, _ string) {
	t.Helper()
	a := New(Options{Unit: unit, Store: ob, Scan: ob.ScanEntries, Log: quietLog()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	<-a.scanned
	cancel()
	<-done
}

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
	ts := record.TS(now)
	call := func(passage, purpose, result string) record.AuditRow {
		return record.AuditRow{TS: ts, Device: "d", Venue: "v", Interface: "qr", Passage: passage, Purpose: purpose, Attempt: 1,
			HTTPStatus: 200, PlatformRequestID: "p-0123456789abcdef", Signature: verify.SigAccepted, Result: result, Source: verify.SourceLive}
	}
	// A passage with its call; a retried passage; a local deny (no call, fine); an online
	// passage with no call (a gap); a call naming no passage (a gap); a ping (fine).
	p1 := add(record.StreamPassage, record.Passage{Mode: "online", Reason: "ok", Verdict: "pass", Policy: "sha256:0123456789abcdef"})
	add(record.StreamAudit, call(p1, record.PurposePassage, verify.ResultOK))
	p2 := add(record.StreamPassage, record.Passage{Mode: "online", Reason: "ok", Verdict: "pass"})
	add(record.StreamAudit, call(p2, record.PurposePassage, verify.ResultPlatformError))
	add(record.StreamAudit, call(p2, record.PurposePassage, verify.ResultOK))
	add(record.StreamPassage, record.Passage{Mode: "online", Reason: verify.ReasonMalformedScan, Verdict: "deny"})
	gap := add(record.StreamPassage, record.Passage{Mode: "online", Reason: "health_code_red", Verdict: "deny"})
	orphan := add(record.StreamAudit, call("", record.PurposePassage, verify.ResultTimeout))
	add(record.StreamAudit, call("", record.PurposePing, verify.ResultOK))
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
	path := filepath.Join(t.TempDir(), "queue.db")
	ob, err := queue.Open(path, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	au := New(Options{Unit: unit, Store: ob, QueueSize: 2, Log: quietLog()})
	call := verify.Call{Interface: verify.KindQR, Attempt: 1, Status: 200, Result: verify.ResultOK, Source: verify.SourceLive, Start: time.Now()}
	// Nothing drains yet: two jobs queue, the third is dropped and counted, none waits.
	for _, p := range []string{"p1", "p2", "p3"} {
		au.Decided(context.Background(), verify.Credential{}, p, verify.Decision{Call: &call, Retried: &call})
	}
	if au.Lost() != 2 {
		t.Fatalf("Lost %d, want 2 (the third job's rows)", au.Lost())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // shutting down: Run drains what is queued and returns
	if err := au.Run(ctx); err != nil {
		t.Fatal(err)
	}
	au.Ping(call) // after the drain
	if au.Lost() != 3 {
		t.Fatalf("Lost %d after a row queued past shutdown, want 3", au.Lost())
	}
	entries, err := ob.Pending(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var rows []record.AuditRow
	for _, e := range entries {
		var r record.AuditRow
		if e.Stream == record.StreamAudit && json.Unmarshal(e.Payload, &r) == nil {
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

// TestUnsettledFlaggedPassages: in a real outbox, a flagged passage with no alert and no
// answered re-check call is unsettled (also one whose re-check got no answer); one with an
// alert, or with an answered re-check call, is settled; an unflagged passage is never
// looked at. Alerting them at start settles them, so the next start alerts nothing.
func TestUnsettledFlaggedPassages(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "queue.db")
	ob, err := queue.Open(path, queue.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	ctx := context.Background()
	add := func(stream string, v any) {
		if _, err := ob.AppendID(ctx, stream, "sentinel/v1/v/d/"+stream, uuid.NewString(), func(int64, string) ([]byte, error) { return json.Marshal(v) }); err != nil {
			t.Fatal(err)
		}
	}
	flagged := func(name string) record.Passage {
		r := record.Passage{ID: name + "-" + uuid.NewString(), TS: "2026-11-25T08:00:00.000Z", Credential: verify.KindQR, Verdict: verify.Pass,
			Reason: verify.ReasonOfflineFlagged, Mode: verify.ModeOffline, Fallback: verify.OfflineAllowAndFlag, Flagged: true,
			Policy: "sha256:0123456789abcdef", Subject: record.Subject{ID: "3505**********1237", Name: "张*", Sealed: "c2VhbGVk"}}
		add(record.StreamPassage, r)
		return r
	}
	recheck := func(passage, source string) {
		add(record.StreamAudit, record.AuditRow{Interface: "qr", Passage: passage, Purpose: record.PurposeRecheck, Attempt: 1, Result: verify.ResultOK, Source: source})
	}
	lost := flagged("lost")
	alerted := flagged("alerted")
	add(record.StreamAlert, record.Alert{Kind: record.AlertRecheckFailed, Passage: alerted.ID, Reason: verify.ReasonHealthCodeRed})
	rechecked := flagged("rechecked")
	recheck(rechecked.ID, verify.SourceLive)
	noAnswer := flagged("noanswer")
	recheck(noAnswer.ID, verify.SourceOffline)
	add(record.StreamAudit, record.AuditRow{Interface: "qr", Passage: lost.ID, Purpose: record.PurposePassage, Result: verify.ResultTimeout, Source: verify.SourceOffline})
	add(record.StreamPassage, record.Passage{ID: uuid.NewString(), Verdict: verify.Pass, Reason: verify.ReasonOK, Mode: verify.ModeOnline})

	us, _, err := findUnsettled(ctx, ob.ScanEntries, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range us {
		got = append(got, strings.SplitN(u.ID, "-", 2)[0])
	}
	sort.Strings(got)
	if strings.Join(got, ",") != "lost,noanswer" {
		t.Fatalf("unsettled %v, want lost,noanswer", got)
	}

	runScan(t, ob, path)
	entries, err := ob.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var alerts []record.Alert
	for _, e := range entries {
		if e.Stream != record.StreamAlert {
			continue
		}
		var a record.Alert
		if err := json.Unmarshal(e.Payload, &a); err != nil {
			t.Fatal(err)
		}
		if e.Topic != "sentinel/v1/v/d/alert" {
			t.Errorf("alert on topic %s", e.Topic)
		}
		if a.Kind == record.AlertRecheckAbandoned {
			alerts = append(alerts, a)
		}
	}
	if len(alerts) != 2 {
		t.Fatalf("%d recheck_abandoned alerts, want 2", len(alerts))
	}
	for _, a := range alerts {
		if (a.Passage != lost.ID && a.Passage != noAnswer.ID) || a.Reason != record.ReasonDaemonRestarted || a.PassageTS != lost.TS ||
			a.Credential != verify.KindQR || a.Policy != lost.Policy || a.Subject.ID != lost.Subject.ID || a.Subject.Sealed != "" || a.Device != "d" || a.Seq == 0 {
			t.Errorf("alert %+v", a)
		}
	}
	if us, _, err := findUnsettled(ctx, ob.ScanEntries, nil); err != nil || len(us) != 0 {
		t.Fatalf("after alerting: %d unsettled (%v), want 0", len(us), err)
	}
}

// TestUnsettledScanSnapshot: the start-up scan sees only what was in the outbox when it
// began: a passage flagged by this run after that (its re-check waits in memory) is not
// alerted as lost.
func TestUnsettledScanSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	ob, err := queue.Open(path, queue.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	ctx := context.Background()
	flag := func() string {
		id := uuid.NewString()
		if _, err := ob.AppendID(ctx, record.StreamPassage, "sentinel/v1/v/d/passage", id, func(int64, string) ([]byte, error) {
			return json.Marshal(record.Passage{ID: id, Flagged: true, Reason: verify.ReasonOfflineFlagged})
		}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	for i := 0; i < 200; i++ { // enough rows that the scan is still running when this run appends
		if _, err := ob.AppendID(ctx, record.StreamAudit, "sentinel/v1/v/d/audit", "", func(int64, string) ([]byte, error) {
			return json.Marshal(record.AuditRow{Interface: "qr", Purpose: record.PurposePassage, Result: verify.ResultOK, Source: verify.SourceLive})
		}); err != nil {
			t.Fatal(err)
		}
	}
	old := flag()
	a := New(Options{Unit: unit, Store: ob, Scan: ob.ScanEntries, Log: quietLog()})
	actx, cancel := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { defer close(ran); _ = a.Run(actx) }()
	<-a.Started()
	flag() // this run's flagged passage: its re-check is pending in memory
	<-a.scanned
	cancel()
	<-ran
	entries, err := ob.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var alerted []string
	for _, e := range entries {
		if e.Stream == record.StreamAlert {
			var a record.Alert
			if err := json.Unmarshal(e.Payload, &a); err != nil {
				t.Fatal(err)
			}
			alerted = append(alerted, a.Passage)
		}
	}
	if len(alerted) != 1 || alerted[0] != old {
		t.Fatalf("alerted %v, want only the previous run's %s", alerted, old)
	}
}

// BenchmarkFindUnsettled measures the start-up scan of an outbox holding n records (passages,
// one in 50 flagged, and one audit row each), the cost every start pays (docs/BENCHMARKS.md).
func BenchmarkFindUnsettled(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "queue.db")
			ob, err := queue.Open(path, queue.Options{Synchronous: "NORMAL"})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var wg sync.WaitGroup
			sem := make(chan struct{}, 64) // many appends in flight: the writer batches them
			for i := 0; i < n/2; i++ {
				rec := record.Passage{ID: uuid.NewString(), TS: "2026-11-25T08:00:00.000Z", Credential: verify.KindQR, Verdict: verify.Pass, Reason: verify.ReasonOK,
					Mode: verify.ModeOnline, Gate: record.GateOpened, Policy: "sha256:0123456789abcdef", Subject: record.Subject{ID: "3505**********1237", Name: "张*"}, Clock: clock.Synced}
				if i%50 == 0 {
					rec.Flagged, rec.Reason, rec.Mode = true, verify.ReasonOfflineFlagged, verify.ModeOffline
				}
				row := record.AuditRow{Interface: "qr", Passage: rec.ID, Purpose: record.PurposePassage, Attempt: 1, Result: verify.ResultOK, Source: verify.SourceLive}
				for _, v := range []struct {
					stream string
					v      any
				}{{record.StreamPassage, rec}, {record.StreamAudit, row}} {
					sem <- struct{}{}
					wg.Add(1)
					go func() {
						defer func() { <-sem; wg.Done() }()
						if _, err := ob.AppendID(ctx, v.stream, "s/v/d/"+v.stream, "", func(int64, string) ([]byte, error) { return json.Marshal(v.v) }); err != nil {
							b.Error(err)
						}
					}()
				}
			}
			wg.Wait()
			defer ob.Close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				us, _, err := findUnsettled(ctx, ob.ScanEntries, nil)
				if err != nil || len(us) != n/2/50 {
					b.Fatalf("%d unsettled (%v), want %d", len(us), err, n/2/50)
				}
			}
		})
	}
}

// TestDeniedRecheckNeedsAlert: a re-check that got a deny answer settles its flagged passage
// only together with its recheck_failed alert; without one (the alert could not be stored)
// the next start raises it.
func TestDeniedRecheckNeedsAlert(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	ob, err := queue.Open(path, queue.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	ctx := context.Background()
	add := func(stream string, v any) {
		if _, err := ob.AppendID(ctx, stream, "sentinel/v1/v/d/"+stream, uuid.NewString(), func(int64, string) ([]byte, error) { return json.Marshal(v) }); err != nil {
			t.Fatal(err)
		}
	}
	flagged := func() record.Passage {
		r := record.Passage{ID: uuid.NewString(), TS: "2026-11-25T08:00:00.000Z", Credential: verify.KindQR, Verdict: verify.Pass,
			Reason: verify.ReasonOfflineFlagged, Mode: verify.ModeOffline, Fallback: verify.OfflineAllowAndFlag, Flagged: true,
			Policy: "sha256:0123456789abcdef", Subject: record.Subject{ID: "3505**********1237", Name: "张*"}}
		add(record.StreamPassage, r)
		return r
	}
	recheck := func(passage, verdict string) {
		add(record.StreamAudit, record.AuditRow{Interface: "qr", Passage: passage, Purpose: record.PurposeRecheck, Attempt: 1, Result: verify.ResultOK, Source: verify.SourceLive, Verdict: verdict})
	}
	noAlert := flagged()
	recheck(noAlert.ID, verify.Deny)
	alerted := flagged()
	recheck(alerted.ID, verify.Deny)
	add(record.StreamAlert, record.Alert{Kind: record.AlertRecheckFailed, Passage: alerted.ID, Verdict: verify.Deny})
	passed := flagged()
	recheck(passed.ID, verify.Pass)

	us, _, err := findUnsettled(ctx, ob.ScanEntries, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 1 || us[0].ID != noAlert.ID || !us[0].Denied {
		t.Fatalf("unsettled %+v, want only the denied passage without an alert, Denied", us)
	}
	runScan(t, ob, path)
	entries, err := ob.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var raised []record.Alert
	for _, e := range entries {
		var a record.Alert
		if e.Stream == record.StreamAlert && json.Unmarshal(e.Payload, &a) == nil && a.Passage == noAlert.ID {
			raised = append(raised, a)
		}
	}
	if len(raised) != 1 || raised[0].Kind != record.AlertRecheckFailed || raised[0].Verdict != verify.Deny || raised[0].Reason != record.ReasonDaemonRestarted {
		t.Fatalf("alerts raised at start for the denied passage: %+v, want one recheck_failed, verdict deny", raised)
	}
	if us, _, err := findUnsettled(ctx, ob.ScanEntries, nil); err != nil || len(us) != 0 {
		t.Fatalf("after alerting: %d unsettled (%v), want 0", len(us), err)
	}
}

// slowStore counts the rows it stores, each after a delay.
type slowStore struct {
	mu   sync.Mutex
	rows int
}

func (s *slowStore) AppendID(ctx context.Context, _, _, _ string, build func(int64, string) ([]byte, error)) (queue.Entry, error) {
	time.Sleep(50 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows++
	if _, err := build(int64(s.rows), fmt.Sprint(s.rows)); err != nil {
		return queue.Entry{}, err
	}
	return queue.Entry{}, nil
}

func (s *slowStore) count() int { s.mu.Lock(); defer s.mu.Unlock(); return s.rows }

// Found in the chain test under load (2026-12-02): the offline status at a clean stop was
// taken while the last passage's audit row was still queued, so its signed head missed that
// row. Settle returns once every queued row is stored.
func TestSettleWaitsForQueuedRows(t *testing.T) {
	st := &slowStore{}
	a := New(Options{Unit: unit, Store: st, Log: quietLog()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	call := verify.Call{Interface: verify.KindQR, Status: 200, Result: verify.ResultOK}
	for i := range 3 {
		a.Decided(ctx, verify.Credential{Kind: verify.KindQR}, fmt.Sprintf("p-%d", i), verify.Decision{Call: &call})
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	a.Settle(sctx)
	if n := st.count(); n != 3 || sctx.Err() != nil {
		t.Errorf("after Settle %d rows stored (ctx %v), want 3", n, sctx.Err())
	}
	// Nothing queued: it returns at once.
	start := time.Now()
	a.Settle(sctx)
	if time.Since(start) > time.Second {
		t.Errorf("Settle with nothing queued took %v", time.Since(start))
	}
}
