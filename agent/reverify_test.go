package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/sentinel-edge/sentinel/agent/clock"

	"github.com/google/uuid"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

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
	flagged := func(name string) Record {
		r := Record{ID: name + "-" + uuid.NewString(), TS: "2026-11-25T08:00:00.000Z", Credential: verify.KindQR, Verdict: verify.Pass,
			Reason: verify.ReasonOfflineFlagged, Mode: verify.ModeOffline, Fallback: verify.OfflineAllowAndFlag, Flagged: true,
			Policy: "sha256:0123456789abcdef", Subject: Subject{ID: "3505**********1237", Name: "张*", Sealed: "c2VhbGVk"}}
		add(StreamPassage, r)
		return r
	}
	recheck := func(passage, source string) {
		add(StreamAudit, AuditRow{Interface: "qr", Passage: passage, Purpose: PurposeRecheck, Attempt: 1, Result: verify.ResultOK, Source: source})
	}
	lost := flagged("lost")
	alerted := flagged("alerted")
	add(StreamAlert, Alert{Kind: AlertRecheckFailed, Passage: alerted.ID, Reason: verify.ReasonHealthCodeRed})
	rechecked := flagged("rechecked")
	recheck(rechecked.ID, verify.SourceLive)
	noAnswer := flagged("noanswer")
	recheck(noAnswer.ID, verify.SourceOffline)
	add(StreamAudit, AuditRow{Interface: "qr", Passage: lost.ID, Purpose: PurposePassage, Result: verify.ResultTimeout, Source: verify.SourceOffline})
	add(StreamPassage, Record{ID: uuid.NewString(), Verdict: verify.Pass, Reason: verify.ReasonOK, Mode: verify.ModeOnline})

	us, err := findUnsettled(ctx, path, nil)
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

	cfg := &config.Config{}
	cfg.Device.ID, cfg.Device.Venue, cfg.Queue.Path, cfg.Uplink.TopicPrefix = "d", "v", path, "sentinel/v1"
	d := &Daemon{Cfg: cfg, Log: quietLog(), Outbox: ob}
	<-alertUnsettled(ctx, d)
	entries, err := ob.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var alerts []Alert
	for _, e := range entries {
		if e.Stream != StreamAlert {
			continue
		}
		var a Alert
		if err := json.Unmarshal(e.Payload, &a); err != nil {
			t.Fatal(err)
		}
		if e.Topic != "sentinel/v1/v/d/alert" {
			t.Errorf("alert on topic %s", e.Topic)
		}
		if a.Kind == AlertRecheckAbandoned {
			alerts = append(alerts, a)
		}
	}
	if len(alerts) != 2 {
		t.Fatalf("%d recheck_abandoned alerts, want 2", len(alerts))
	}
	for _, a := range alerts {
		if (a.Passage != lost.ID && a.Passage != noAnswer.ID) || a.Reason != ReasonDaemonRestarted || a.PassageTS != lost.TS ||
			a.Credential != verify.KindQR || a.Policy != lost.Policy || a.Subject.ID != lost.Subject.ID || a.Subject.Sealed != "" || a.Device != "d" || a.Seq == 0 {
			t.Errorf("alert %+v", a)
		}
	}
	if us, err := findUnsettled(ctx, path, nil); err != nil || len(us) != 0 {
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
		if _, err := ob.AppendID(ctx, StreamPassage, "sentinel/v1/v/d/passage", id, func(int64, string) ([]byte, error) {
			return json.Marshal(Record{ID: id, Flagged: true, Reason: verify.ReasonOfflineFlagged})
		}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	for i := 0; i < 200; i++ { // enough rows that the scan is still running when this run appends
		if _, err := ob.AppendID(ctx, StreamAudit, "sentinel/v1/v/d/audit", "", func(int64, string) ([]byte, error) {
			return json.Marshal(AuditRow{Interface: "qr", Purpose: PurposePassage, Result: verify.ResultOK, Source: verify.SourceLive})
		}); err != nil {
			t.Fatal(err)
		}
	}
	old := flag()
	cfg := &config.Config{}
	cfg.Device.ID, cfg.Device.Venue, cfg.Queue.Path, cfg.Uplink.TopicPrefix = "d", "v", path, "sentinel/v1"
	done := alertUnsettled(ctx, &Daemon{Cfg: cfg, Log: quietLog(), Outbox: ob})
	flag() // this run's flagged passage: its re-check is pending in memory
	<-done
	entries, err := ob.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var alerted []string
	for _, e := range entries {
		if e.Stream == StreamAlert {
			var a Alert
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
				rec := Record{ID: uuid.NewString(), TS: "2026-11-25T08:00:00.000Z", Credential: verify.KindQR, Verdict: verify.Pass, Reason: verify.ReasonOK,
					Mode: verify.ModeOnline, Gate: GateOpened, Policy: "sha256:0123456789abcdef", Subject: Subject{ID: "3505**********1237", Name: "张*"}, Clock: clock.Synced}
				if i%50 == 0 {
					rec.Flagged, rec.Reason, rec.Mode = true, verify.ReasonOfflineFlagged, verify.ModeOffline
				}
				row := AuditRow{Interface: "qr", Passage: rec.ID, Purpose: PurposePassage, Attempt: 1, Result: verify.ResultOK, Source: verify.SourceLive}
				for _, v := range []struct {
					stream string
					v      any
				}{{StreamPassage, rec}, {StreamAudit, row}} {
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
			if err := ob.Close(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				us, err := findUnsettled(ctx, path, nil)
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
	flagged := func() Record {
		r := Record{ID: uuid.NewString(), TS: "2026-11-25T08:00:00.000Z", Credential: verify.KindQR, Verdict: verify.Pass,
			Reason: verify.ReasonOfflineFlagged, Mode: verify.ModeOffline, Fallback: verify.OfflineAllowAndFlag, Flagged: true,
			Policy: "sha256:0123456789abcdef", Subject: Subject{ID: "3505**********1237", Name: "张*"}}
		add(StreamPassage, r)
		return r
	}
	recheck := func(passage, verdict string) {
		add(StreamAudit, AuditRow{Interface: "qr", Passage: passage, Purpose: PurposeRecheck, Attempt: 1, Result: verify.ResultOK, Source: verify.SourceLive, Verdict: verdict})
	}
	noAlert := flagged()
	recheck(noAlert.ID, verify.Deny)
	alerted := flagged()
	recheck(alerted.ID, verify.Deny)
	add(StreamAlert, Alert{Kind: AlertRecheckFailed, Passage: alerted.ID, Verdict: verify.Deny})
	passed := flagged()
	recheck(passed.ID, verify.Pass)

	us, err := findUnsettled(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 1 || us[0].ID != noAlert.ID || !us[0].Denied {
		t.Fatalf("unsettled %+v, want only the denied passage without an alert, Denied", us)
	}
	cfg := &config.Config{}
	cfg.Device.ID, cfg.Device.Venue, cfg.Queue.Path, cfg.Uplink.TopicPrefix = "d", "v", path, "sentinel/v1"
	<-alertUnsettled(ctx, &Daemon{Cfg: cfg, Log: quietLog(), Outbox: ob})
	entries, err := ob.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var raised []Alert
	for _, e := range entries {
		var a Alert
		if e.Stream == StreamAlert && json.Unmarshal(e.Payload, &a) == nil && a.Passage == noAlert.ID {
			raised = append(raised, a)
		}
	}
	if len(raised) != 1 || raised[0].Kind != AlertRecheckFailed || raised[0].Verdict != verify.Deny || raised[0].Reason != ReasonDaemonRestarted {
		t.Fatalf("alerts raised at start for the denied passage: %+v, want one recheck_failed, verdict deny", raised)
	}
	if us, err := findUnsettled(ctx, path, nil); err != nil || len(us) != 0 {
		t.Fatalf("after alerting: %d unsettled (%v), want 0", len(us), err)
	}
}
