package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/selftest"
	"github.com/sentinel-edge/sentinel/internal/buildinfo"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/verify"
)

func init() {
	register("docking-check", "run the checks of a city's docking verification (对接验证) and print a report", cmdDockingCheck)
}

// DefaultMaxClockOffset is how far the unit's clock may be from the platform's.
const DefaultMaxClockOffset = 5 * time.Second

// dockRow is one check of the report.
type dockRow struct {
	Check  string  `json:"check"`
	Pass   bool    `json:"pass"`
	Detail string  `json:"detail"`
	MS     float64 `json:"ms,omitempty"`
}

// dockReport is what a docking application attaches.
type dockReport struct {
	Device      string    `json:"device"`
	Venue       string    `json:"venue"`
	Style       string    `json:"style"`
	Version     string    `json:"version"`
	Commit      string    `json:"commit"`
	Platform    string    `json:"platform"`
	Mapping     string    `json:"mapping"`
	MappingFile string    `json:"mapping_file"`
	MappingHash string    `json:"mapping_hash"`
	Signing     string    `json:"signing"`
	AppKey      string    `json:"app_key,omitempty"`
	Time        string    `json:"time"`
	Rows        []dockRow `json:"checks"`
	OK          bool      `json:"ok"`
}

func cmdDockingCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("docking-check", "docking-check --config FILE [--qr TOKEN] [--idcard NUMBER --name NAME] [--format text|md|json]", stdout, stderr)
	path := fs.String("config", "", "config `FILE` of this unit")
	qr := fs.String("qr", "", "a health-code `TOKEN` the platform knows (a test person's)")
	idcard := fs.String("idcard", "", "an ID `NUMBER` the platform knows")
	name := fs.String("name", "", "the `NAME` of --idcard")
	format := fs.String("format", "text", "report `format`: text, md or json")
	maxOffset := fs.Duration("max-clock-offset", DefaultMaxClockOffset, "the largest clock offset from the platform that `passes`")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sentinel %s\n\n"+
			"Runs the checks a city's docking verification asks for, each one row of a report:\n"+
			"ping; clock offset; a signed request accepted; each known credential (--qr, --idcard)\n"+
			"mapped completely; an unknown credential recognised as not found; a request with a\n"+
			"deliberately wrong signature refused (signature_rejected); the answer time within\n"+
			"platform.timeout. The report carries the unit's identity, the software version, the\n"+
			"mapping's name and hash, for the docking application. Every call is audited in the\n"+
			"unit's outbox (purpose commissioning). Personal data is masked.\n\n"+
			"Exit codes: 0 every row passed; 1 a row failed (or the outbox cannot be opened);\n"+
			"2 usage or invalid config.\n\n", "docking-check --config FILE [--qr TOKEN] [--idcard NUMBER --name NAME] [--format text|md|json]")
		fs.PrintDefaults()
	}
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	switch {
	case *format != "text" && *format != "md" && *format != "json":
		fmt.Fprintf(stderr, "sentinel docking-check: --format must be text, md or json, got %q\n", *format)
		return exitUsage
	case *maxOffset <= 0:
		fmt.Fprintf(stderr, "sentinel docking-check: --max-clock-offset must be > 0, got %s\n", *maxOffset)
		return exitUsage
	case (*idcard == "") != (*name == ""):
		fmt.Fprintln(stderr, "sentinel docking-check: --idcard and --name go together")
		return exitUsage
	}
	cfg, code := loadConfig(fs, *path, stderr)
	if cfg == nil {
		return code
	}
	c, code := openCommission("docking-check", cfg, stderr)
	if c == nil {
		return code
	}
	defer c.close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var known []verify.Credential
	if *qr != "" {
		known = append(known, verify.Credential{Kind: verify.KindQR, QRToken: *qr})
	}
	if *idcard != "" {
		known = append(known, verify.Credential{Kind: verify.KindIDCard, IDNumber: verify.NormalizeIDNumber(*idcard), Name: *name})
	}
	r := c.dockingCheck(ctx, known, *maxOffset)
	if p := c.auditProblem(); p != "" {
		fmt.Fprintf(stderr, "sentinel docking-check: %s\n", p)
		r.Rows = append(r.Rows, dockRow{Check: "calls audited", Detail: p})
		r.OK = false
	}
	storeDockingCheck(cfg.Queue.Path, r, stderr)
	mk := &masker{}
	for _, k := range known {
		mk.vals = append(mk.vals, newMasker(k).vals...)
	}
	var out strings.Builder
	writeReport(&out, r, *format)
	fmt.Fprint(stdout, mk.mask(out.String()))
	if !r.OK {
		return exitFailure
	}
	return exitOK
}

// dockingCheck runs every check and returns the report.
func (c *commission) dockingCheck(ctx context.Context, known []verify.Credential, maxOffset time.Duration) dockReport {
	cfg, m := c.cfg, c.mapping
	bi := buildinfo.Get()
	r := dockReport{
		Device: cfg.Device.ID, Venue: cfg.Device.Venue, Style: cfg.Device.Style, Version: bi.Version, Commit: bi.Commit,
		Platform: redactURL(cfg.Platform.URL), Mapping: m.Name, MappingFile: m.File(), MappingHash: m.Hash(),
		Signing: "off", Time: time.Now().UTC().Format(time.RFC3339),
	}
	if r.MappingFile == "" {
		r.MappingFile = "built in"
	}
	signed := cfg.Platform.SecretFile != ""
	if signed {
		r.Signing, r.AppKey = m.SigningAlgorithm(cfg.Platform.Signing), cfg.Platform.AppKey
	}
	ping, pingErr := c.client.Ping(ctx) // audited by the client's ping hook
	r.add("ping", pingErr == nil, ms(ping), describe(ping, pingErr))

	var knownCalls []verify.Call
	clock := clockRow(ping, ping.ServerTime, "Date header of the ping", maxOffset)
	for _, cred := range known {
		var answer []byte
		tctx := verify.WithTrace(ctx, func(x verify.Exchange) { answer = x.Answer })
		res, call, err := c.client.Verify(tctx, cred, "")
		c.audit(call)
		knownCalls = append(knownCalls, call)
		r.Rows = append(r.Rows, c.mappedRow(cred, res, call, err, answer))
		if err == nil && !res.ServerTime.IsZero() && !res.ServerTime.Equal(call.ServerTime) {
			clock = clockRow(call, res.ServerTime, "the answer's response.server_time", maxOffset)
		}
	}
	if len(known) == 0 {
		r.add("known credential mapped completely", false, 0, "not run: give --qr TOKEN or --idcard NUMBER --name NAME of a person the platform knows")
	}
	r.Rows = append(r.Rows, clock)
	unknown := verify.Credential{Kind: verify.KindQR, QRToken: randomToken()}
	_, ucall, uerr := c.client.Verify(ctx, unknown, "")
	c.audit(ucall)
	r.add("unknown credential recognised as not found", ucall.Result == verify.ResultNotFound, ms(ucall),
		"a random token no one holds: "+describe(ucall, uerr))

	signedCall := ucall
	if len(knownCalls) > 0 {
		signedCall = knownCalls[0]
	}
	accepted := signed && signedCall.Signature == verify.SigAccepted && (signedCall.Result == verify.ResultOK || signedCall.Result == verify.ResultNotFound)
	r.add("signed request accepted", accepted, ms(signedCall), signedDetail(signed, signedCall))

	bad := verify.Credential{Kind: verify.KindQR, QRToken: randomToken()}
	if len(known) > 0 {
		bad = known[0]
	}
	_, bcall, berr := c.client.Verify(verify.WithWrongSignature(ctx), bad, "")
	c.audit(bcall)
	detail := "signed with one character of the signature changed: " + describe(bcall, berr)
	if !signed {
		detail = "not run: signing is off (set platform.secret_file and platform.app_key)"
	}
	r.add("wrong signature refused as signature_rejected", signed && bcall.Result == verify.ResultSignatureRejected, ms(bcall), detail)
	r.Rows = append(r.Rows, timeoutRow(c.calls, cfg.Platform.Timeout))
	sort.SliceStable(r.Rows, func(i, j int) bool { return rowOrder(r.Rows[i].Check) < rowOrder(r.Rows[j].Check) })
	r.OK = true
	for _, row := range r.Rows {
		r.OK = r.OK && row.Pass
	}
	return r
}

// rowOrder is the order of the report's rows: the (#13) and a city's checklist.
func rowOrder(check string) int {
	for i, prefix := range []string{"ping", "clock offset", "signed request accepted", "known credential", "unknown credential", "wrong signature", "answer time"} {
		if strings.HasPrefix(check, prefix) {
			return i
		}
	}
	return 99
}

func (r *dockReport) add(check string, pass bool, ms float64, detail string) {
	r.Rows = append(r.Rows, dockRow{Check: check, Pass: pass, Detail: detail, MS: ms})
}

func ms(c verify.Call) float64 { return float64(c.Latency.Microseconds()) / 1000 }

// describe says what a call got, without personal data.
func describe(c verify.Call, err error) string {
	switch {
	case c.Status == 0 && err != nil:
		return fmt.Sprintf("no answer (%s): %v", c.Result, err)
	case c.Status == 0:
		return "no answer"
	}
	s := fmt.Sprintf("HTTP %d, %s", c.Status, c.Result)
	if c.RequestID != "" {
		s += ", platform request id " + c.RequestID
	}
	if err != nil && c.Result != verify.ResultNotFound {
		s += ": " + err.Error()
	}
	return s
}

func signedDetail(signed bool, c verify.Call) string {
	if !signed {
		return "signing is off: set platform.secret_file and platform.app_key (the platform issues them)"
	}
	return "signature " + c.Signature + "; " + describe(c, nil)
}

// clockRow compares the platform's clock, as the call's answer gave it, with the unit's at
// the middle of the exchange. A Date header has a one-second resolution, allowed for.
func clockRow(call verify.Call, platform time.Time, source string, maxOffset time.Duration) dockRow {
	row := dockRow{Check: "clock offset", MS: ms(call)}
	if platform.IsZero() || call.Start.IsZero() {
		row.Detail = "the platform's answer carried no time (no Date header, no response.server_time)"
		return row
	}
	off := platform.Sub(call.Start.Add(call.Latency / 2))
	slack := time.Duration(0)
	if platform.Equal(call.ServerTime) { // the Date header, truncated to the second
		off += 500 * time.Millisecond
		slack = 500 * time.Millisecond
	}
	row.Pass = off.Abs() <= maxOffset+slack
	row.Detail = fmt.Sprintf("the platform's clock is %+.3f s from the unit's (by the %s, ±%s; at most %s)", off.Seconds(), source, slack, maxOffset)
	return row
}

// mappedRow checks the answer about a known credential: a success, and every mapped field
// resolved in it.
func (c *commission) mappedRow(cred verify.Credential, res verify.Result, call verify.Call, err error, answer []byte) dockRow {
	row := dockRow{Check: "known credential mapped completely (" + cred.Kind + ")", MS: ms(call)}
	if err != nil || call.Result != verify.ResultOK {
		row.Detail = describe(call, err)
		return row
	}
	reads, rerr := c.mapping.ReadAnswer(call.Interface, answer)
	if rerr != nil {
		row.Detail = rerr.Error()
		return row
	}
	var missing []string
	for _, rd := range reads {
		if rd.Problem != "" {
			missing = append(missing, rd.Key+" ("+rd.Problem+")")
		}
	}
	if len(missing) > 0 {
		row.Detail = "not resolved: " + strings.Join(missing, "; ")
		return row
	}
	// An ID card's answer must be about that card (as a passage requires): else the mapping's
	// id_number path reads another field, or the platform answered about someone else.
	if got := verify.NormalizeIDNumber(strings.TrimSpace(res.Identity.IDNumber)); cred.Kind == verify.KindIDCard && got != "" && got != cred.IDNumber {
		row.Detail = fmt.Sprintf("the answer's ID number %s is not the one asked (%s): response.id_number reads another field, or the platform answered about another person",
			privacy.MaskID(got), privacy.MaskID(cred.IDNumber))
		return row
	}
	row.Pass = true
	row.Detail = fmt.Sprintf("all %d mapped fields resolved (health code %s); %s", len(reads), res.HealthCode, describe(call, nil))
	return row
}

// timeoutRow checks every answer came within platform.timeout.
func timeoutRow(calls []verify.Call, timeout time.Duration) dockRow {
	row := dockRow{Check: "answer time within platform.timeout"}
	var slowest time.Duration
	for _, c := range calls {
		if c.Result == verify.ResultTimeout {
			row.Detail = fmt.Sprintf("a %s call got no answer within %s", c.Interface, timeout)
			return row
		}
		slowest = max(slowest, c.Latency)
	}
	row.MS = float64(slowest.Microseconds()) / 1000
	row.Pass = len(calls) > 0 && slowest < timeout
	row.Detail = fmt.Sprintf("slowest of %d answers: %s (platform.timeout %s)", len(calls), slowest.Round(time.Microsecond), timeout)
	return row
}

// randomToken is a QR token no one holds.
func randomToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "SENTINEL-DOCKING-CHECK-" + strings.ToUpper(hex.EncodeToString(b[:]))
}

// writeReport prints the report as text, Markdown or JSON.
func writeReport(w io.Writer, r dockReport, format string) {
	verdict := "PASS: every check passed; attach this report to the docking application"
	if !r.OK {
		verdict = "FAIL: fix every failed check, then run docking-check again"
	}
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
		return
	case "md":
		fmt.Fprintf(w, "# Docking verification report (对接验证)\n\n| | |\n|---|---|\n")
		for _, kv := range r.header() {
			fmt.Fprintf(w, "| %s | %s |\n", kv[0], mdCell(kv[1]))
		}
		fmt.Fprintf(w, "\n| check | result | ms | detail |\n|---|---|---|---|\n")
		for _, row := range r.Rows {
			fmt.Fprintf(w, "| %s | %s | %.1f | %s |\n", row.Check, passFail(row.Pass), row.MS, mdCell(row.Detail))
		}
		fmt.Fprintf(w, "\n**%s**\n", verdict)
		return
	}
	fmt.Fprintln(w, "Docking verification report (对接验证)")
	for _, kv := range r.header() {
		fmt.Fprintf(w, "  %-9s %s\n", kv[0]+":", kv[1])
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tMS\tDETAIL")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\n", row.Check, passFail(row.Pass), row.MS, oneLine(row.Detail))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s\n", verdict)
}

func (r dockReport) header() [][2]string {
	h := [][2]string{
		{"unit", fmt.Sprintf("device %s, venue %s, style %s", r.Device, r.Venue, r.Style)},
		{"software", fmt.Sprintf("sentinel %s (commit %s)", r.Version, r.Commit)},
		{"platform", r.Platform},
		{"mapping", fmt.Sprintf("%s (%s, %s)", r.Mapping, r.MappingFile, r.MappingHash)},
		{"signing", r.Signing},
	}
	if r.AppKey != "" {
		h = append(h, [2]string{"app key", r.AppKey})
	}
	return append(h, [2]string{"time", r.Time + " (the unit's clock)"})
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func mdCell(s string) string { return strings.ReplaceAll(oneLine(s), "|", `\|`) }

// storeDockingCheck keeps the outcome beside the queue, where the daemon reads it: a passed
// docking-check is evidence for docked, a failed one keeps the unit from it.
func storeDockingCheck(queuePath string, r dockReport, stderr io.Writer) {
	st := record.SelftestState{OK: r.OK, At: record.TS(time.Now()), Source: record.SelftestDocking, Version: r.Version, Mapping: r.MappingHash}
	for _, row := range r.Rows {
		if !row.Pass {
			st.Failed = append(st.Failed, row.Check)
		}
	}
	st.Detail = fmt.Sprintf("%d checks, %d failed; mapping %s", len(r.Rows), len(st.Failed), r.Mapping)
	if err := selftest.Save(queuePath, selftest.DockingFile, st); err != nil {
		fmt.Fprintf(stderr, "sentinel docking-check: the outcome was NOT stored, so the status will not count it: %v\n", err)
	}
}
