package audit

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// Store keeps records durably; queue.Outbox is one.
type Store interface {
	AppendID(ctx context.Context, stream, topic, id string, build func(seq int64, id string) ([]byte, error)) (queue.Entry, error)
}

// Verifier re-checks flagged passages; verify.Verifier is one.
type Verifier interface {
	Recheck(ctx context.Context, cred verify.Credential, passageID string) verify.Decision
	PolicyHash() string
}

// Options configure an Auditor.
type Options struct {
	Unit  record.Unit
	Store Store
	// Recheck, when set, re-verifies the passages allow_and_flag admitted, every
	// ProbeInterval while the platform does not answer.
	Recheck       Verifier
	ProbeInterval time.Duration
	// Scan, when set, reads every record the outbox holds, in order, for the start-up search
	// of flagged passages a previous run left without a re-check; queue.Outbox.ScanEntries is
	// one. It calls opts.Snapshot once its read snapshot is taken, and skips and counts
	// damaged rows.
	Scan func(ctx context.Context, opts queue.ScanOptions, f func(queue.Entry) error) (queue.ScanResult, error)
	// QueueSize bounds the decisions whose calls wait to be stored; past it their rows are
	// dropped and counted. 0 means 256.
	QueueSize int
	// Batch bounds the jobs stored at once (their appends run concurrently, so the outbox
	// commits them together). 0 means 32.
	Batch int
	// DrainWait bounds how long shutdown stores the rows still queued. 0 means 10s.
	DrainWait time.Duration
	// StoreTimeout bounds the storing of one row or alert. 0 means 5s.
	StoreTimeout time.Duration
	// MaxRechecks bounds the credentials waiting for a re-check. 0 means 1000.
	MaxRechecks int
	Log         *slog.Logger
}

// job is the calls of one decision (or one ping): its rows are stored in call order; and
// the alert the decision raised, if any, after them.
type job struct {
	passage, purpose string
	verdict          string // a re-check's verdict, for the row of the call that decided it
	calls            []verify.Call
	alert            *record.Alert
}

// Auditor stores audit rows and alerts, and re-checks flagged passages. Its hooks (Decided,
// Ping) never block.
type Auditor struct {
	opt      Options
	auditTop string
	alertTop string
	ch       chan job
	rc       *rechecker // nil without Options.Recheck
	scanned  chan struct{}
	began    chan struct{} // closed once the start-up scan's read snapshot is taken

	// dropped counts rows lost since the last stored row (carried in its lost field); lost
	// only grows.
	dropped, lost atomic.Int64
	// queued counts jobs queued and not yet stored or lost (Settle waits for none).
	queued  atomic.Int64
	mu      sync.RWMutex // held for reading while a job is queued; for writing to stop
	stopped bool         // Run is draining or returned: enqueue drops
}

// New returns an auditor; Run must run for rows to be stored.
func New(opt Options) *Auditor {
	if opt.QueueSize <= 0 {
		opt.QueueSize = 256
	}
	if opt.Batch <= 0 {
		opt.Batch = 32
	}
	if opt.DrainWait <= 0 {
		opt.DrainWait = 10 * time.Second
	}
	if opt.StoreTimeout <= 0 {
		opt.StoreTimeout = 5 * time.Second
	}
	if opt.MaxRechecks <= 0 {
		opt.MaxRechecks = 1000
	}
	if opt.ProbeInterval <= 0 {
		opt.ProbeInterval = 30 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	a := &Auditor{opt: opt, auditTop: opt.Unit.Topic(record.StreamAudit), alertTop: opt.Unit.Topic(record.StreamAlert),
		ch: make(chan job, opt.QueueSize), scanned: make(chan struct{}), began: make(chan struct{})}
	if opt.Recheck != nil {
		a.rc = newRechecker(a)
	}
	return a
}

// Decided queues the rows of a decision's calls (the pipeline's hook) and, for a flagged
// passage, its credential for a re-check. It never blocks.
func (a *Auditor) Decided(_ context.Context, cred verify.Credential, passageID string, d verify.Decision) {
	a.enqueue(job{passage: passageID, purpose: record.PurposePassage, calls: d.Calls(), alert: mismatchAlert(cred, passageID, d)})
	if d.Flagged && a.rc != nil {
		a.rc.add(cred, passageID, d)
	}
}

// Ping queues the row of a liveness ping (the platform client's OnPing hook).
func (a *Auditor) Ping(c verify.Call) {
	a.enqueue(job{purpose: record.PurposePing, calls: []verify.Call{c}})
}

// Checked queues the row of a call the unit made to check the platform itself (the
// selftest's signed probe, sent as passage id passage: the selftest command, the daemon's
// platform check), purpose commissioning like sentinel try's. It never blocks.
func (a *Auditor) Checked(passage string, c verify.Call) {
	a.enqueue(job{passage: passage, purpose: record.PurposeCommissioning, calls: []verify.Call{c}})
}

// Settle waits until every row queued so far is stored (or counted lost), or ctx ends: the
// offline status at stop takes its signed head after it.
func (a *Auditor) Settle(ctx context.Context) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for a.queued.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Lost is how many audit rows could not be stored since start. Unless the outbox was closed,
// each is also in the outbox's persisted loss counters.
func (a *Auditor) Lost() int64 { return a.lost.Load() }

// PendingRechecks is how many flagged passages wait for their re-check.
func (a *Auditor) PendingRechecks() int {
	if a.rc == nil {
		return 0
	}
	return a.rc.pendingCount()
}

// Started is closed once the start-up scan's read snapshot was taken (or there is no scan):
// records stored after it are not mistaken for a previous run's. Run closes it.
func (a *Auditor) Started() <-chan struct{} { return a.began }

// enqueue queues j without blocking. A full queue or a stopped auditor drops its rows and
// counts them.
func (a *Auditor) enqueue(j job) {
	if len(j.calls) == 0 && j.alert == nil {
		return
	}
	a.mu.RLock()
	if !a.stopped {
		a.queued.Add(1)
		select {
		case a.ch <- j:
			a.mu.RUnlock()
			return
		default:
			a.queued.Add(-1)
		}
	}
	stopped := a.stopped
	a.mu.RUnlock()
	a.lose(j, stopped)
}

// lose counts the rows of j as lost.
func (a *Auditor) lose(j job, stopped bool) {
	if j.alert != nil {
		a.opt.Log.Error("alert NOT stored: audit queue full or stopped", "kind", j.alert.Kind, "passage", j.passage)
	}
	n := int64(len(j.calls))
	a.dropped.Add(n)
	a.lost.Add(n)
	why := "audit queue full"
	if stopped {
		why = "audit stopped"
	}
	a.opt.Log.Error("audit rows NOT stored: "+why, "passage", j.passage, "purpose", j.purpose, "rows", n, "lost_total", a.lost.Load())
}

// Run stores queued rows, runs the start-up scan and the re-checks, until ctx ends; then it
// stores what is still queued (within DrainWait) and returns. Rows queued after that are
// dropped and counted.
func (a *Auditor) Run(ctx context.Context) error {
	go a.scanUnsettled(ctx)
	stored := make(chan struct{})
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	go func() { defer close(stored); a.storeRows(sctx) }()
	var err error
	if a.rc != nil {
		err = a.rc.run(ctx) // it audits its calls: the rows keep being stored meanwhile
	} else {
		<-ctx.Done()
	}
	<-a.scanned // the outbox stays open until the scan ended
	stop()
	<-stored
	return err
}

// storeRows stores queued jobs until ctx ends, then drains.
func (a *Auditor) storeRows(ctx context.Context) {
	for {
		select {
		case j := <-a.ch:
			a.storeBatch(ctx, a.take(j))
		case <-ctx.Done():
			a.drain(context.WithoutCancel(ctx))
			return
		}
	}
}

// drain stops the auditor and stores what is queued.
func (a *Auditor) drain(ctx context.Context) {
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, a.opt.DrainWait)
	defer cancel()
	for {
		select {
		case j := <-a.ch:
			if dctx.Err() != nil {
				a.lose(j, true)
				a.queued.Add(-1)
				continue
			}
			a.storeBatch(dctx, a.take(j))
		default:
			return
		}
	}
}

// take returns first and the jobs queued behind it, at most Batch.
func (a *Auditor) take(first job) []job {
	batch := []job{first}
	for len(batch) < a.opt.Batch {
		select {
		case j := <-a.ch:
			batch = append(batch, j)
		default:
			return batch
		}
	}
	return batch
}

// storeBatch stores the jobs concurrently (the outbox commits them together), the rows of one
// job in call order.
func (a *Auditor) storeBatch(ctx context.Context, batch []job) {
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

// store stores one row per call, in order. A row that cannot be stored is logged and
// counted, never silently dropped; the first row stored after losses carries their count.
func (a *Auditor) store(ctx context.Context, j job) {
	defer func() {
		if j.alert != nil {
			_ = a.Alert(ctx, *j.alert) // logged either way
		}
		a.queued.Add(-1)
	}()
	for _, c := range j.calls {
		if c.RedirectHost != "" {
			a.opt.Log.Warn("the platform answered with a redirect; it was not followed and the call counts as platform_error",
				"passage", j.passage, "interface", c.Interface, "redirect_host", c.RedirectHost, "http_status", c.Status)
		}
		row := a.row(j, c)
		row.Lost = a.dropped.Swap(0)
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opt.StoreTimeout)
		_, err := a.opt.Store.AppendID(actx, record.StreamAudit, a.auditTop, "", func(seq int64, id string) ([]byte, error) {
			row.ID, row.Seq = id, seq
			return json.Marshal(row)
		})
		cancel()
		if err != nil {
			a.dropped.Add(row.Lost + 1) // carried by the next row that is stored
			a.lost.Add(1)
			a.opt.Log.Error("audit row NOT stored", "passage", j.passage, "interface", c.Interface, "request_id", c.RequestID,
				"lost_total", a.lost.Load(), "err", err)
		}
	}
}

// row is the audit row of call c.
func (a *Auditor) row(j job, c verify.Call) record.AuditRow {
	row := Row(a.opt.Unit, j.purpose, j.passage, c)
	if j.purpose == record.PurposeRecheck && c.Source == verify.SourceLive {
		row.Verdict = j.verdict
	}
	return row
}

// Row is the audit row of call c, made for purpose (serving passage, "" for none); the store
// gives it its id and seq. sentinel try and docking-check make theirs with it too.
func Row(u record.Unit, purpose, passage string, c verify.Call) record.AuditRow {
	row := record.AuditRow{
		TS:     record.TS(c.Start),
		Device: u.Device, Venue: u.Venue,
		Interface: c.Interface, Passage: passage, Purpose: purpose, Attempt: c.Attempt,
		LatencyMS:  float64(c.Latency.Microseconds()) / 1000,
		HTTPStatus: c.Status, PlatformRequestID: c.RequestID,
		Signature: c.Signature, Result: c.Result, Source: c.Source, RedirectHost: c.RedirectHost,
	}
	if c.Start.IsZero() {
		row.TS = record.TS(time.Now())
	}
	return row
}

// mismatchAlert is the alert of a decision whose platform answer was about another person
// than the card's; nil otherwise. Both people are masked.
func mismatchAlert(cred verify.Credential, passageID string, d verify.Decision) *record.Alert {
	if d.Mismatch == nil {
		return nil
	}
	kind := cred.Kind
	if d.Credential != "" {
		kind = d.Credential
	}
	al := &record.Alert{
		Kind: record.AlertIdentityMismatch, Passage: passageID, PassageTS: record.TS(time.Now()), Credential: kind,
		Subject:       record.Subject{ID: privacy.MaskID(d.Subject.IDNumber), Name: privacy.MaskName(d.Subject.Name)},
		AnswerSubject: &record.Subject{ID: privacy.MaskID(d.Mismatch.IDNumber), Name: privacy.MaskName(d.Mismatch.Name)},
		Verdict:       d.Verdict, Reason: d.Reason, Policy: d.PolicyHash,
	}
	if d.Call != nil {
		al.PlatformRequestID = d.Call.RequestID
	}
	return al
}

// Alert stamps al and commits it to the outbox on stream alert; a refusal is logged, never
// silent, and returned.
func (a *Auditor) Alert(ctx context.Context, al record.Alert) error {
	al.TS, al.Device, al.Venue = record.TS(time.Now()), a.opt.Unit.Device, a.opt.Unit.Venue
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opt.StoreTimeout)
	defer cancel()
	_, err := a.opt.Store.AppendID(actx, record.StreamAlert, a.alertTop, "", func(seq int64, id string) ([]byte, error) {
		al.ID, al.Seq = id, seq
		return json.Marshal(al)
	})
	if err != nil {
		a.opt.Log.Error("alert NOT stored", "kind", al.Kind, "passage", al.Passage, "err", err)
		return err
	}
	a.opt.Log.Warn("alert", "kind", al.Kind, "passage", al.Passage, "reason", al.Reason)
	return nil
}
