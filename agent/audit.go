package agent

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentinel-edge/sentinel/verify"
)

// auditTimeout bounds the storing of one audit row.
var auditTimeout = 5 * time.Second

// auditQueueSize bounds the decisions (and pings) whose calls wait to be stored; past it
// their rows are dropped and counted (the decision loop never waits for the audit).
var auditQueueSize = 256

// auditBatch bounds the jobs the auditor stores at once: their appends run concurrently, so
// the outbox commits them together (group commit).
var auditBatch = 32

// auditDrainWait bounds how long shutdown stores the rows still queued; what is left then is
// dropped and counted.
var auditDrainWait = 10 * time.Second

// auditJob is the calls of one decision (or one ping): its rows are stored in call order.
type auditJob struct {
	passage, purpose string
	verdict          string // a re-check's verdict, for the row of the call that decided it
	calls            []verify.Call
}

// auditor stores audit rows on its own goroutine, so that a slow disk never delays a passage:
// the pipeline's Decided hook and the platform's ping hook only queue them.
type auditor struct {
	d  *Daemon
	ch chan auditJob
	// dropped counts rows lost since the last stored row (carried in its lost field).
	dropped atomic.Int64
	mu      sync.RWMutex // held for reading while a job is queued; for writing to stop
	stopped bool         // run is draining or returned: enqueue drops
}

func newAuditor(d *Daemon) *auditor {
	return &auditor{d: d, ch: make(chan auditJob, auditQueueSize)}
}

// enqueue queues j without blocking. A full queue or a stopped auditor drops its rows and
// counts them: in AuditLost, in the log, and in the lost field of the next row stored.
func (a *auditor) enqueue(j auditJob) {
	if len(j.calls) == 0 {
		return
	}
	a.mu.RLock()
	if !a.stopped {
		select {
		case a.ch <- j:
			a.mu.RUnlock()
			return
		default:
		}
	}
	stopped := a.stopped
	a.mu.RUnlock()
	a.lose(j, stopped)
}

// lose counts the rows of j as lost.
func (a *auditor) lose(j auditJob, stopped bool) {
	n := int64(len(j.calls))
	a.dropped.Add(n)
	a.d.auditLost.Add(n)
	why := "audit queue full"
	if stopped {
		why = "audit stopped"
	}
	a.d.Log.Error("audit rows NOT stored: "+why, "passage", j.passage, "purpose", j.purpose, "rows", n, "lost_total", a.d.auditLost.Load())
}

// run stores queued jobs until ctx ends, then stores what is still queued (within
// auditDrainWait) and returns; jobs queued after that are dropped and counted.
func (a *auditor) run(ctx context.Context) {
	for {
		select {
		case j := <-a.ch:
			a.storeBatch(context.WithoutCancel(ctx), a.take(j))
		case <-ctx.Done():
			a.drain(context.WithoutCancel(ctx))
			return
		}
	}
}

// drain stops the auditor and stores what is queued.
func (a *auditor) drain(ctx context.Context) {
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, auditDrainWait)
	defer cancel()
	for {
		select {
		case j := <-a.ch:
			if dctx.Err() != nil {
				a.lose(j, true)
				continue
			}
			a.storeBatch(dctx, a.take(j))
		default:
			return
		}
	}
}

// take returns first and the jobs queued behind it, at most auditBatch.
func (a *auditor) take(first auditJob) []auditJob {
	batch := []auditJob{first}
	for len(batch) < auditBatch {
		select {
		case j := <-a.ch:
			batch = append(batch, j)
		default:
			return batch
		}
	}
	return batch
}

// storeBatch stores the jobs concurrently (the outbox commits them together), the rows of
// one job in call order.
func (a *auditor) storeBatch(ctx context.Context, batch []auditJob) {
	if len(batch) == 1 {
		a.store(ctx, batch[0])
		return
	}
	var wg sync.WaitGroup
	for _, j := range batch {
		wg.Go(func() { a.store(ctx, j) })
	}
	wg.Wait()
}

func (a *auditor) store(ctx context.Context, j auditJob) {
	a.d.storeAuditRows(ctx, j, &a.dropped)
}

// auditorOf is d's running auditor, nil when the audit part is not running.
func auditorOf(d *Daemon) *auditor { return d.auditor.Load() }

// auditCalls queues one row per call for the auditor; without one (a daemon whose audit part
// did not start) it stores them now.
func (d *Daemon) auditCalls(ctx context.Context, passageID, purpose string, calls []verify.Call) {
	if d.Outbox == nil {
		return
	}
	if a := auditorOf(d); a != nil {
		a.enqueue(auditJob{passage: passageID, purpose: purpose, calls: calls})
		return
	}
	d.storeAuditRows(ctx, auditJob{passage: passageID, purpose: purpose, calls: calls}, nil)
}

// auditRecheck audits the calls of a re-check whose platform answer gave verdict.
func (d *Daemon) auditRecheck(ctx context.Context, passageID, verdict string, calls []verify.Call) {
	j := auditJob{passage: passageID, purpose: PurposeRecheck, verdict: verdict, calls: calls}
	if a := auditorOf(d); a != nil {
		a.enqueue(j)
		return
	}
	if d.Outbox != nil {
		d.storeAuditRows(ctx, j, nil)
	}
}

// storeAuditRows stores one row per call, in order; it reports whether every row was stored.
// A row that cannot be stored is logged and counted, never silently dropped. dropped, when
// set, is the count of rows lost before these: the first row stored carries it in lost.
func (d *Daemon) storeAuditRows(ctx context.Context, j auditJob, dropped *atomic.Int64) bool {
	topic := Topic(d.Cfg, StreamAudit)
	passageID := j.passage
	all := true
	for _, c := range j.calls {
		row := auditRow(d, passageID, j.purpose, c)
		if j.purpose == PurposeRecheck && c.Source == verify.SourceLive {
			row.Verdict = j.verdict
		}
		var lost int64
		if dropped != nil {
			lost = dropped.Swap(0)
		}
		row.Lost = lost
		actx, cancel := context.WithTimeout(ctx, auditTimeout)
		_, err := d.Outbox.AppendID(actx, StreamAudit, topic, "", func(seq int64, id string) ([]byte, error) {
			row.ID, row.Seq = id, seq
			return json.Marshal(row)
		})
		cancel()
		if err != nil {
			all = false
			if dropped != nil {
				dropped.Add(lost + 1) // carried by the next row that is stored
			}
			d.auditLost.Add(1)
			d.Log.Error("audit row NOT stored", "passage", passageID, "interface", c.Interface, "request_id", c.RequestID, "lost_total", d.auditLost.Load(), "err", err)
		}
	}
	return all
}

// auditRow is the row of call c.
func auditRow(d *Daemon, passageID, purpose string, c verify.Call) AuditRow {
	row := AuditRow{
		TS:     c.Start.UTC().Format(tsLayout),
		Device: d.Cfg.Device.ID, Venue: d.Cfg.Device.Venue,
		Interface: c.Interface, Passage: passageID, Purpose: purpose, Attempt: c.Attempt,
		LatencyMS:  float64(c.Latency.Microseconds()) / 1000,
		HTTPStatus: c.Status, PlatformRequestID: c.RequestID,
		Signature: c.Signature, Result: c.Result, Source: c.Source,
	}
	if c.Start.IsZero() {
		row.TS = time.Now().UTC().Format(tsLayout)
	}
	return row
}

// auditPing is the client's OnPing hook.
func (d *Daemon) auditPing(c verify.Call) {
	d.auditCalls(context.Background(), "", PurposePing, []verify.Call{c})
}

// AuditLost is how many audit rows could not be stored since start (in memory). Unless the
// outbox was closed, each is also in the outbox's persisted loss counters (rejected_full,
// failed_writes, or abandoned when auditTimeout ended before the writer took the row), which
// `sentinel queue stats` and the queue_loss notice report.
func (d *Daemon) AuditLost() int64 { return d.auditLost.Load() }

func init() {
	RegisterPart(Part{Name: "audit", Order: 5, Setup: setupAudit})
}

// setupAudit audits every decision's calls and, under allow_and_flag, re-verifies flagged
// passages when the platform returns (reverify.go); at start it alerts the flagged passages a
// previous run left without a re-check.
func setupAudit(ctx context.Context, d *Daemon) (func(context.Context) error, error) {
	// Flagged passages a previous run left without a re-check: alerted, whatever the offline
	// policy is now (the scan goes on in the background).
	scanned := alertUnsettled(ctx, d)
	au := newAuditor(d)
	if d.Outbox != nil {
		d.auditor.Store(au)
	}
	var rc *rechecker
	if d.Cfg.Platform.OfflinePolicy == verify.OfflineAllowAndFlag {
		rc = newRechecker(d)
	}
	// Never blocks: the rows are queued for the auditor, the credential for the rechecker.
	d.Pipeline.Decided = func(ctx context.Context, cred verify.Credential, passageID string, dec verify.Decision) {
		d.auditCalls(ctx, passageID, PurposePassage, dec.Calls())
		if dec.Flagged && rc != nil {
			rc.add(cred, passageID, dec)
		}
	}
	return func(ctx context.Context) error {
		// The auditor runs until the rechecker (which audits its calls) and the scan ended,
		// then stores what is queued: parts stop before the outbox closes.
		actx, stop := context.WithCancel(context.WithoutCancel(ctx))
		audited := make(chan struct{})
		go func() {
			defer close(audited)
			au.run(actx)
		}()
		var err error
		if rc != nil {
			err = rc.run(ctx)
		} else {
			<-ctx.Done()
		}
		<-scanned // the outbox stays open until the scan ended
		stop()
		<-audited
		d.auditor.Store(nil)
		return err
	}, nil
}
