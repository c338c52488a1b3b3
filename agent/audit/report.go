package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

// The self-check of the call audit (`sentinel report calls`): it reads the outbox file
// read-only, while the daemon runs, and never writes it.

// CallsReport is the self-check of one time range.
type CallsReport struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	Zone  string    `json:"zone"`
	// PerDay counts calls per day (in Zone) and interface.
	PerDay []DayCalls `json:"per_day"`
	// Calls and Failures count every call and those without a usable answer (result other
	// than ok and not_found); FailuresByResult breaks the failures down.
	Calls            int            `json:"calls"`
	Failures         int            `json:"failures"`
	FailuresByResult map[string]int `json:"failures_by_result"`
	Pings            int            `json:"pings"` // calls that serve no passage by design
	// WithoutPassage are calls (not pings) that name no passage, or one whose record the
	// outbox does not hold; PassagesPurged says delivered passages may have been purged.
	WithoutPassage []string `json:"calls_without_passage"` // audit row ids
	// OnlineWithoutCall are passages decided online in the range for which no call is
	// audited.
	OnlineWithoutCall []string  `json:"passages_online_without_call"` // passage ids
	Passages          int       `json:"passages"`
	Retention         Retention `json:"retention"`
	// Undecodable counts rows whose payload could not be read, or that the scan skipped as
	// damaged.
	Undecodable int `json:"undecodable_rows"`
}

// DayCalls is one day's count for one interface.
type DayCalls struct {
	Day       string `json:"day"`
	Interface string `json:"interface"`
	Calls     int    `json:"calls"`
	Failures  int    `json:"failures"`
}

// Retention is what the outbox still holds of the audit and the passages.
type Retention struct {
	AuditRows      int       `json:"audit_rows"`
	AuditPending   int       `json:"audit_pending"`
	OldestAudit    time.Time `json:"oldest_audit"`
	NewestAudit    time.Time `json:"newest_audit"`
	PassageRows    int       `json:"passage_rows"`
	PassagePending int       `json:"passage_pending"`
	OldestPassage  time.Time `json:"oldest_passage"`
	// Lost are the queue's loss counters (records dropped for good), when it keeps them.
	Lost map[string]int64 `json:"lost"`
}

// Problems lists what the self-check found wrong, in words.
func (r CallsReport) Problems() []string {
	var ps []string
	if n := len(r.WithoutPassage); n > 0 {
		ps = append(ps, fmt.Sprintf("%d calls without a passage", n))
	}
	if n := len(r.OnlineWithoutCall); n > 0 {
		ps = append(ps, fmt.Sprintf("%d passages decided online without an audited call", n))
	}
	if r.Undecodable > 0 {
		ps = append(ps, fmt.Sprintf("%d outbox rows could not be read", r.Undecodable))
	}
	for k, v := range r.Retention.Lost {
		if v > 0 {
			ps = append(ps, fmt.Sprintf("the queue lost %d records for good (%s)", v, k))
		}
	}
	sort.Strings(ps)
	return ps
}

// localReasons are the reasons decided before any call: such a passage has no call.
var localReasons = map[string]bool{
	verify.ReasonMalformedScan: true, verify.ReasonInvalidIDNumber: true, verify.ReasonCredentialRefused: true,
}

// Entries is what the report reads of the outbox; queue.Reader is one.
type Entries interface {
	ScanEntries(ctx context.Context, opts queue.ScanOptions, f func(queue.Entry) error) (queue.ScanResult, error)
	Stats(ctx context.Context) (queue.Stats, error)
}

// ReportCalls builds the self-check of [since, until) from the outbox file at path, read-only.
// Days are counted in loc.
func ReportCalls(ctx context.Context, path string, since, until time.Time, loc *time.Location) (CallsReport, error) {
	qr, err := queue.OpenReader(path)
	if err != nil {
		return CallsReport{Since: since, Until: until, Zone: loc.String()}, fmt.Errorf("audit: %w", err)
	}
	defer qr.Close()
	r, err := Report(ctx, qr, since, until, loc)
	if err != nil {
		return r, fmt.Errorf("audit: read %s: %w", path, err)
	}
	return r, nil
}

// Report builds the self-check of [since, until) from what src holds. Days are counted in loc.
func Report(ctx context.Context, src Entries, since, until time.Time, loc *time.Location) (CallsReport, error) {
	r := CallsReport{Since: since, Until: until, Zone: loc.String(), FailuresByResult: map[string]int{}}
	t := tally{since: since, until: until, passages: map[string]passageRec{}, called: map[string]bool{}}
	res, err := src.ScanEntries(ctx, queue.ScanOptions{}, func(e queue.Entry) error { t.add(&r, e); return nil })
	if err != nil {
		return r, err
	}
	r.Undecodable += int(res.Damaged) // rows the scan could not read at all
	if st, err := src.Stats(ctx); err == nil {
		r.Retention.Lost = map[string]int64{"dropped_oldest": st.DroppedOldest, "rejected_full": st.RejectedFull, "failed_writes": st.FailedWrites}
	}
	t.countCalls(&r, loc)
	t.countPassages(&r)
	return r, nil
}

type passageRec struct {
	mode, reason string
	created      time.Time
}

// tally is what the report gathers while it reads the outbox.
type tally struct {
	since, until time.Time
	passages     map[string]passageRec
	audits       []record.AuditRow
	called       map[string]bool // passages an audit row names
}

// add takes one outbox record into the report.
func (t *tally) add(r *CallsReport, e queue.Entry) {
	ret, at, delivered := &r.Retention, e.CreatedAt, !e.DeliveredAt.IsZero()
	switch e.Stream {
	case record.StreamAudit:
		ret.AuditRows++
		if !delivered {
			ret.AuditPending++
		}
		if ret.OldestAudit.IsZero() || at.Before(ret.OldestAudit) {
			ret.OldestAudit = at
		}
		if at.After(ret.NewestAudit) {
			ret.NewestAudit = at
		}
		var a record.AuditRow
		if json.Unmarshal(e.Payload, &a) != nil {
			r.Undecodable++
			return
		}
		a.ID = e.ID // the outbox's id is the row's identity
		if a.Passage != "" {
			t.called[a.Passage] = true
		}
		if !at.Before(t.since) && at.Before(t.until) {
			t.audits = append(t.audits, a)
		}
	case record.StreamPassage:
		ret.PassageRows++
		if !delivered {
			ret.PassagePending++
		}
		if ret.OldestPassage.IsZero() || at.Before(ret.OldestPassage) {
			ret.OldestPassage = at
		}
		var p struct {
			Mode   string `json:"mode"`
			Reason string `json:"reason"`
		}
		if json.Unmarshal(e.Payload, &p) != nil {
			r.Undecodable++
			return
		}
		t.passages[e.ID] = passageRec{p.Mode, p.Reason, at}
	}
}

// countCalls counts the calls in range per day and interface, their failures, and the calls
// that serve no passage the outbox holds.
func (t *tally) countCalls(r *CallsReport, loc *time.Location) {
	days := map[[2]string]*DayCalls{}
	for _, a := range t.audits {
		r.Calls++
		ts, _ := time.Parse(time.RFC3339, a.TS)
		k := [2]string{ts.In(loc).Format(time.DateOnly), a.Interface}
		dc := days[k]
		if dc == nil {
			dc = &DayCalls{Day: k[0], Interface: k[1]}
			days[k] = dc
		}
		dc.Calls++
		if a.Result != verify.ResultOK && a.Result != verify.ResultNotFound {
			r.Failures++
			r.FailuresByResult[a.Result]++
			dc.Failures++
		}
		switch {
		case a.Purpose == record.PurposePing:
			r.Pings++
		case a.Passage == "":
			r.WithoutPassage = append(r.WithoutPassage, a.ID)
		default:
			if _, ok := t.passages[a.Passage]; !ok && !(r.Retention.OldestPassage.After(ts)) {
				r.WithoutPassage = append(r.WithoutPassage, a.ID)
			}
		}
	}
	for _, dc := range days {
		r.PerDay = append(r.PerDay, *dc)
	}
	sort.Slice(r.PerDay, func(i, j int) bool {
		if r.PerDay[i].Day != r.PerDay[j].Day {
			return r.PerDay[i].Day < r.PerDay[j].Day
		}
		return r.PerDay[i].Interface < r.PerDay[j].Interface
	})
}

// countPassages counts the passages in range, and those decided online without a call.
func (t *tally) countPassages(r *CallsReport) {
	for id, p := range t.passages {
		if p.created.Before(t.since) || !p.created.Before(t.until) {
			continue
		}
		r.Passages++
		if p.mode == verify.ModeOnline && !localReasons[p.reason] && !t.called[id] {
			r.OnlineWithoutCall = append(r.OnlineWithoutCall, id)
		}
	}
	sort.Strings(r.OnlineWithoutCall)
}
