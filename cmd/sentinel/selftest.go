package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/selftest"
)

func init() {
	register("selftest", "commissioning self-test of every configured device and service", cmdSelftest)
}

func cmdSelftest(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("selftest", "selftest --config FILE [--json] [--timeout D]", stdout, stderr)
	path := fs.String("config", "", "config `FILE` of this unit")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	timeout := fs.Duration("timeout", selftest.DefaultTimeout, "longest time one check may take")
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "%s: --timeout must be > 0, got %s\n", fs.Name(), *timeout)
		return exitUsage
	}
	cfg, code := loadConfig(fs, *path, stderr)
	if cfg == nil {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rows, ok := selftest.Run(ctx, cfg, selftest.Options{Timeout: *timeout})
	// Stored beside the queue: the daemon publishes it in the status and counts it for docked,
	// whether it runs now or starts later.
	if err := selftest.Save(cfg.Queue.Path, selftest.File, selftest.Outcome(rows, ok, record.SelftestCLI)); err != nil {
		fmt.Fprintf(stderr, "sentinel selftest: the outcome was NOT stored, so the status will not show it: %v\n", err)
	}
	if *asJSON {
		type row struct {
			Check  string `json:"check"`
			Result string `json:"result"`
			Detail string `json:"detail"`
			Fix    string `json:"fix,omitempty"`
			MS     int64  `json:"ms"`
		}
		out := struct {
			Device string `json:"device"`
			Venue  string `json:"venue"`
			OK     bool   `json:"ok"`
			Checks []row  `json:"checks"`
		}{Device: cfg.Device.ID, Venue: cfg.Device.Venue, OK: ok}
		for _, r := range rows {
			out.Checks = append(out.Checks, row{r.Name, string(r.Status), r.Detail, r.Fix, r.Took.Milliseconds()})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	} else {
		printSelftest(stdout, *path, cfg.Device.ID, cfg.Device.Venue, rows, ok)
	}
	if !ok {
		return exitFailure
	}
	return exitOK
}

// printSelftest writes the table a field engineer reads on site: one row per check, and
// under each failure what to do.
func printSelftest(w io.Writer, path, device, venue string, rows []selftest.Row, ok bool) {
	fmt.Fprintf(w, "Sentinel self-test of %s (device %s, venue %s), %s\n\n", path, device, venue, time.Now().UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tDETAIL")
	var pass, fail, na int
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.Status, oneLine(r.Detail))
		switch r.Status {
		case selftest.StatusPass:
			pass++
		case selftest.StatusNotApplicable:
			na++
		default:
			fail++
		}
		if r.Fix != "" && r.Status == selftest.StatusFail {
			fmt.Fprintf(tw, "\t\t-> %s\n", oneLine(r.Fix))
		}
	}
	tw.Flush()
	verdict := "READY: this unit may go live"
	if !ok {
		verdict = "NOT READY: fix every FAIL above, then run selftest again"
	}
	fmt.Fprintf(w, "\n%d checks: %d pass, %d fail, %d n/a. %s\n", len(rows), pass, fail, na, verdict)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
