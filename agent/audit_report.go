package agent

import (
	"bytes"
	"compress/flate"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"time"

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
	if _, err := os.Stat(path); err != nil {
		return r, fmt.Errorf("audit: queue file %s: %w", path, unwrapPath(err))
	}
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return r, fmt.Errorf("audit: open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	hasEnc, err := hasColumn(ctx, db, "outbox", "enc")
	if err != nil {
		return r, fmt.Errorf("audit: %s is not a Sentinel queue: %w", path, err)
	}
	encCol := "0"
	if hasEnc {
		encCol = "enc"
	}
	q := `SELECT id, stream, payload, ` + encCol + `, created_at, delivered_at FROM outbox WHERE stream IN ('audit', 'passage') ORDER BY n`
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return r, fmt.Errorf("audit: read %s: %w", path, err)
	}
	defer rows.Close()

	type passageRec struct {
		mode, reason string
		created      time.Time
	}
	passages := map[string]passageRec{}
	var audits []AuditRow
	called := map[string]bool{}
	ret := &r.Retention
	for rows.Next() {
		var (
			id, stream string
			stored     []byte
			enc        int
			created    int64
			delivered  sql.NullInt64
		)
		if err := rows.Scan(&id, &stream, &stored, &enc, &created, &delivered); err != nil {
			return r, fmt.Errorf("audit: read %s: %w", path, err)
		}
		at := time.UnixMilli(created)
		payload, err := decodeStored(stored, enc)
		if err != nil {
			r.Undecodable++
			continue
		}
		switch stream {
		case StreamAudit:
			ret.AuditRows++
			if !delivered.Valid {
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
				continue
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
			if !delivered.Valid {
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
				continue
			}
			passages[id] = passageRec{p.Mode, p.Reason, at}
		}
	}
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("audit: read %s: %w", path, err)
	}
	ret.Lost = readLossCounters(ctx, db)

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

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func hasColumn(ctx context.Context, db *sql.DB, table, col string) (bool, error) {
	rows, err := db.QueryContext(ctx, "SELECT name FROM pragma_table_info(?)", table)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	found, seen := false, false
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return false, err
		}
		seen = true
		found = found || name == col
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	if !seen {
		return false, fmt.Errorf("no table %s", table)
	}
	return found, nil
}

// readLossCounters reads the queue's loss counters when the schema has them.
func readLossCounters(ctx context.Context, db *sql.DB) map[string]int64 {
	rows, err := db.QueryContext(ctx, `SELECT name, value FROM counters WHERE name IN ('dropped_oldest', 'rejected_full', 'failed_writes')`)
	if err != nil {
		return nil
	}
	defer rows.Close()
	m := map[string]int64{}
	for rows.Next() {
		var k string
		var v int64
		if rows.Scan(&k, &v) == nil {
			m[k] = v
		}
	}
	return m
}

// decodeStored returns the payload of a stored outbox row. It mirrors the queue's payload
// encodings (queue/compress.go: 0 raw, 1 DEFLATE with a fixed preset dictionary), which never
// change once released; TestReportReadsQueuePayloads checks the two agree.
// TODO(lead): replace with an exported queue decoder once queue/ offers one.
func decodeStored(stored []byte, enc int) ([]byte, error) {
	switch enc {
	case 0:
		return stored, nil
	case 1:
		r := flate.NewReaderDict(bytes.NewReader(stored), queueDictDeflate1)
		defer r.Close()
		return io.ReadAll(r)
	}
	return nil, fmt.Errorf("audit: payload encoding %d is unknown", enc)
}

// queueDictDeflate1 is a copy of queue/compress.go's dictDeflate1.
var queueDictDeflate1 = []byte(`{"kind":"queue_loss","stream":"event","topic":"sentinel/v1/","first_seq":` +
	`"dropped_oldest":"rejected_full":"failed_writes":"alarm","input":"fire","state":"active","cleared",` +
	`{"id":"","seq":,"ts":"2026-11-25T08:00:00.000Z","device":"","venue":"","credential":"idcard","face",` +
	`"subject":{"id":"**********","name":"*","sealed":"","hash":""},"verdict":"deny","reason":"health_code_red",` +
	`"health_code_yellow","nat_expired","nat_missing","nat_positive","unknown_credential","malformed_scan",` +
	`"platform_unreachable","mode":"offline","gate":"not_opened","no_barrier",` +
	`"verdict":"pass","reason":"ok","mode":"online","gate":"opened","policy":"sha256:","health_code":"green",` +
	`"nat_sampled_at":"Z","platform_request_id":"p-","decision_ms":`)
