package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sentinel-edge/sentinel/agent/audit"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/queue"
)

func init() {
	registerReport("calls", "the call-audit self-check: calls per interface per day, failures, gaps, retention", reportCalls)
}

// reportNow is the clock of relative times; tests swap it.
var reportNow = time.Now

// OS seams for the machine's time zone; tests point them elsewhere.
var (
	localtimePath = "/etc/localtime"
	timezonePath  = "/etc/timezone"
)

func reportCalls(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("report calls", "report calls --config FILE [--since T] [--until T] [--json]", stdout, stderr)
	path := fs.String("config", "", "config `FILE` (its queue.path is read, read-only)")
	since := fs.String("since", "24h", "start `T`: RFC 3339, a date YYYY-MM-DD (midnight in --tz), or a duration back from now (24h)")
	until := fs.String("until", "", "end `T` (exclusive), same forms; default now")
	tz := fs.String("tz", "", "time `zone` the days are counted and times shown in, e.g. Asia/Shanghai (default: the machine's zone, from TZ or /etc/localtime)")
	asJSON := fs.Bool("json", false, "print JSON")
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	cfg, code := loadConfig(fs, *path, stderr)
	if cfg == nil {
		return code
	}
	loc, err := reportZone(*tz)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel report calls: --tz: %v\n", err)
		return exitUsage
	}
	now := reportNow()
	from, err := parseReportTime(*since, now, loc)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel report calls: --since: %v\n", err)
		return exitUsage
	}
	to := now
	if *until != "" {
		if to, err = parseReportTime(*until, now, loc); err != nil {
			fmt.Fprintf(stderr, "sentinel report calls: --until: %v\n", err)
			return exitUsage
		}
	}
	if !from.Before(to) {
		fmt.Fprintf(stderr, "sentinel report calls: --since (%s) must be before --until (%s)\n", from.Format(time.RFC3339), to.Format(time.RFC3339))
		return exitUsage
	}
	r, commissioning, err := reportCallsFile(context.Background(), cfg.Queue.Path, from, to, loc)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel report calls: %v\n", err)
		return exitFailure
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			audit.CallsReport
			Commissioning []string `json:"commissioning_calls"`
			Problems      []string `json:"problems"`
		}{r, commissioning, r.Problems()})
	} else {
		printCallsReport(stdout, cfg.Device.ID, cfg.Device.Venue, r, commissioning, loc)
	}
	if len(r.Problems()) > 0 { // a self-check that found a problem fails, as selftest does
		return exitFailure
	}
	return exitOK
}

// reportCallsFile is audit.ReportCalls with the commissioning calls (try, docking-check:
// purpose commissioning) set apart from the calls without a passage: they serve no passage
// by design, and are no problem. It returns their audit row ids.
func reportCallsFile(ctx context.Context, path string, since, until time.Time, loc *time.Location) (audit.CallsReport, []string, error) {
	qr, err := queue.OpenReader(path)
	if err != nil {
		return audit.CallsReport{Since: since, Until: until, Zone: loc.String()}, nil, fmt.Errorf("audit: %w", err)
	}
	defer qr.Close()
	tap := &commissioningTap{Entries: qr, ids: map[string]bool{}}
	r, err := audit.Report(ctx, tap, since, until, loc)
	if err != nil {
		return r, nil, fmt.Errorf("audit: read %s: %w", path, err)
	}
	rest, commissioning := []string{}, []string{}
	for _, id := range r.WithoutPassage {
		if tap.ids[id] {
			commissioning = append(commissioning, id)
		} else {
			rest = append(rest, id)
		}
	}
	r.WithoutPassage = rest
	return r, commissioning, nil
}

// commissioningTap gives the report the outbox's entries and notes the ids of the audit
// rows of commissioning calls on the way, so that the outbox is read once.
type commissioningTap struct {
	audit.Entries
	ids map[string]bool
}

func (t *commissioningTap) ScanEntries(ctx context.Context, opts queue.ScanOptions, f func(queue.Entry) error) (queue.ScanResult, error) {
	return t.Entries.ScanEntries(ctx, opts, func(e queue.Entry) error {
		var row struct {
			Purpose string `json:"purpose"`
		}
		if e.Stream == record.StreamAudit && json.Unmarshal(e.Payload, &row) == nil && row.Purpose == record.PurposeCommissioning {
			t.ids[e.ID] = true
		}
		return f(e)
	})
}

// reportZone is the zone the report counts days in, by name: --tz when given, else the
// machine's (TZ, else the zone /etc/localtime links to, else /etc/timezone). A machine zone
// that has no name is named by its offset now (UTC+08:00): Go calls it "Local", which says
// nothing on a report read elsewhere.
func reportZone(name string) (*time.Location, error) {
	if name != "" {
		loc, err := time.LoadLocation(name)
		if err != nil || name == "Local" {
			return nil, fmt.Errorf("%q is not a time zone name (e.g. Asia/Shanghai, UTC)", name)
		}
		return loc, nil
	}
	if tz, set := os.LookupEnv("TZ"); set {
		if tz == "" {
			return time.UTC, nil
		}
		if loc, err := time.LoadLocation(strings.TrimPrefix(tz, ":")); err == nil {
			return loc, nil
		}
	}
	if target, err := os.Readlink(localtimePath); err == nil {
		if i := strings.LastIndex(target, "zoneinfo/"); i >= 0 {
			if loc, err := time.LoadLocation(target[i+len("zoneinfo/"):]); err == nil {
				return loc, nil
			}
		}
	}
	if b, err := os.ReadFile(timezonePath); err == nil {
		if loc, err := time.LoadLocation(strings.TrimSpace(string(b))); err == nil && strings.TrimSpace(string(b)) != "" {
			return loc, nil
		}
	}
	_, off := reportNow().In(time.Local).Zone()
	return time.FixedZone("UTC"+offsetText(off), off), nil
}

// offsetText writes a zone offset as +08:00.
func offsetText(off int) string {
	sign := '+'
	if off < 0 {
		sign, off = '-', -off
	}
	return fmt.Sprintf("%c%02d:%02d", sign, off/3600, off%3600/60)
}

// parseReportTime reads RFC 3339, a date (midnight in loc), or a duration back from now.
func parseReportTime(s string, now time.Time, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not RFC 3339 (2026-11-25T08:00:00+08:00), a date (2026-11-25) or a positive duration (24h)", s)
}

func printCallsReport(w io.Writer, device, venue string, r audit.CallsReport, commissioning []string, loc *time.Location) {
	tf := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.In(loc).Format(time.RFC3339)
	}
	fmt.Fprintf(w, "Call audit self-check — device %s, venue %s\n", device, venue)
	fmt.Fprintf(w, "Range: %s to %s (days in %s)\n\n", tf(r.Since), tf(r.Until), r.Zone)
	fmt.Fprintf(w, "Calls per interface per day:\n")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  day\tinterface\tcalls\tfailures\n")
	for _, d := range r.PerDay {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\n", d.Day, d.Interface, d.Calls, d.Failures)
	}
	if len(r.PerDay) == 0 {
		fmt.Fprintf(tw, "  (none)\t\t\t\n")
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nCalls: %d (pings %d), failures: %d", r.Calls, r.Pings, r.Failures)
	if len(r.FailuresByResult) > 0 {
		keys := make([]string, 0, len(r.FailuresByResult))
		for k := range r.FailuresByResult {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.FailuresByResult[k]))
		}
		fmt.Fprintf(w, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "\nPassages: %d\n", r.Passages)
	fmt.Fprintf(w, "Calls without a passage: %d\n", len(r.WithoutPassage))
	for _, id := range first(r.WithoutPassage, 10) {
		fmt.Fprintf(w, "  audit row %s\n", id)
	}
	fmt.Fprintf(w, "Commissioning calls (try, docking-check; no passage by design): %d\n", len(commissioning))
	fmt.Fprintf(w, "Passages decided online without a call: %d\n", len(r.OnlineWithoutCall))
	for _, id := range first(r.OnlineWithoutCall, 10) {
		fmt.Fprintf(w, "  passage %s\n", id)
	}
	ret := r.Retention
	fmt.Fprintf(w, "\nRetention (whole outbox):\n")
	fmt.Fprintf(w, "  audit rows: %d held, %d not yet delivered, oldest %s, newest %s\n", ret.AuditRows, ret.AuditPending, tf(ret.OldestAudit), tf(ret.NewestAudit))
	fmt.Fprintf(w, "  passages:   %d held, %d not yet delivered, oldest %s\n", ret.PassageRows, ret.PassagePending, tf(ret.OldestPassage))
	if len(ret.Lost) > 0 {
		keys := make([]string, 0, len(ret.Lost))
		for k := range ret.Lost {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  lost for good (%s): %d\n", k, ret.Lost[k])
		}
	}
	if r.Undecodable > 0 {
		fmt.Fprintf(w, "  unreadable rows: %d\n", r.Undecodable)
	}
	if ps := r.Problems(); len(ps) > 0 {
		fmt.Fprintf(w, "\nSelf-check: %d problem(s): %s\n", len(ps), strings.Join(ps, "; "))
	} else {
		fmt.Fprintf(w, "\nSelf-check: ok\n")
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
