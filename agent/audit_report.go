package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

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
	// Undecodable counts rows whose payload could not be read.
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

// ReportCalls builds the self-check of [since, until) from the outbox file at path, read-only.
// Days are counted in loc.
func ReportCalls(ctx context.Context, path string, since, until time.Time, loc *time.Location) (CallsReport, error) {
	r := CallsReport{Since: since, Until: until, Zone: loc.String(), FailuresByResult: map[string]int{}}
	qr, err := queue.OpenReader(path)
	if err != nil {
		return r, fmt.Errorf("audit: %w", err)
	}
	defer qr.Close()

	type passageRec struct {
		mode, reason string
		created      time.Time
	}
	passages := map[string]passageRec{}
	var audits []AuditRow
	called := map[string]bool{}
	ret := &r.Retention
	err = qr.Entries(ctx, func(e queue.Entry) error {
		id, stream, payload, at, delivered := e.ID, e.Stream, e.Payload, e.CreatedAt, !e.DeliveredAt.IsZero()
		switch stream {
		case StreamAudit:
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
			var a AuditRow
			if json.Unmarshal(payload, &a) != nil {
				r.Undecodable++
				return nil
			}
			a.ID = id // the outbox's id is the row's identity
			if a.Passage != "" {
				called[a.Passage] = true
			}
			if !at.Before(since) && at.Before(until) {
				audits = append(audits, a)
			}
		case StreamPassage:
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
			if json.Unmarshal(payload, &p) != nil {
				r.Undecodable++
				return nil
			}
			passages[id] = passageRec{p.Mode, p.Reason, at}
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("audit: read %s: %w", path, err)
	}
	if st, err := qr.Stats(ctx); err == nil {
		ret.Lost = map[string]int64{"dropped_oldest": st.DroppedOldest, "rejected_full": st.RejectedFull, "failed_writes": st.FailedWrites}
	}

	days := map[[2]string]*DayCalls{}
	for _, a := range audits {
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
		case a.Purpose == PurposePing:
			r.Pings++
		case a.Passage == "":
			r.WithoutPassage = append(r.WithoutPassage, a.ID)
		default:
			if _, ok := passages[a.Passage]; !ok && !(ret.OldestPassage.After(ts)) {
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
	for id, p := range passages {
		if p.created.Before(since) || !p.created.Before(until) {
			continue
		}
		r.Passages++
		if p.mode == verify.ModeOnline && !localReasons[p.reason] && !called[id] {
			r.OnlineWithoutCall = append(r.OnlineWithoutCall, id)
		}
	}
	sort.Strings(r.OnlineWithoutCall)
	return r, nil
}
