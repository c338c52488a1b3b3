package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sentinel-edge/sentinel/agent/audit"
	"github.com/sentinel-edge/sentinel/agent/clock"
	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/open"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/verify"
)

func init() {
	register("try", "ask the platform once as the unit would, and show every step (commissioning)", cmdTry)
}

// commission is what try and docking-check share: the config, the platform client built
// exactly as `sentinel run` builds it, and the unit's outbox, in which every call they make
// is an audit row (purpose commissioning) that the daemon's uplink sends. No record, no
// relay, no screen.
type commission struct {
	cfg     *config.Config
	client  *verify.Client
	mapping *verify.Mapping
	outbox  *queue.Outbox
	calls   []verify.Call // every call made, in order
	lost    int           // audit rows that could not be stored
	lostErr error
}

// openCommission builds the client and opens the outbox; without an outbox no call is made
// (an unaudited call is not allowed). It returns an exit code when it cannot.
func openCommission(name string, cfg *config.Config, stderr io.Writer) (*commission, int) {
	m, err := verify.LoadMapping(cfg.Platform.Mapping)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel %s: platform.mapping: %v\n", name, err)
		return nil, exitUsage
	}
	c := &commission{cfg: cfg, mapping: m}
	if c.client, err = open.Platform(cfg, func(call verify.Call) { c.audit(call) }, clock.Trusted); err != nil {
		fmt.Fprintf(stderr, "sentinel %s: %v\n", name, err)
		return nil, exitFailure
	}
	c.outbox, err = queue.Open(cfg.Queue.Path, queue.Options{Synchronous: cfg.Queue.Synchronous, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintf(stderr, "sentinel %s: queue.path: the outbox cannot be opened, so no platform call is made (every call must be audited): %v\n", name, err)
		return nil, exitFailure
	}
	return c, -1
}

func (c *commission) close() { _ = c.outbox.Close() }

// audit stores one row per call in the outbox, as the daemon's audit does, with purpose
// commissioning; a row that cannot be stored is counted (the command then fails).
func (c *commission) audit(calls ...verify.Call) {
	unit := open.Unit(c.cfg)
	topic := unit.Topic(record.StreamAudit)
	for _, call := range calls {
		c.calls = append(c.calls, call)
		call.Source = verify.SourceLive
		row := audit.Row(unit, record.PurposeCommissioning, "", call)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.outbox.Append(ctx, record.StreamAudit, topic, func(seq int64, id string) ([]byte, error) {
			row.ID, row.Seq = id, seq
			return json.Marshal(row)
		})
		cancel()
		if err != nil {
			c.lost++
			c.lostErr = err
		}
	}
}

// auditProblem says the audit failed, when it did.
func (c *commission) auditProblem() string {
	if c.lost == 0 {
		return ""
	}
	return fmt.Sprintf("%d audit row(s) could not be stored in %s: %v", c.lost, c.cfg.Queue.Path, c.lostErr)
}

// oncePlatform asks the platform once: the verifier decides by its answer as the unit
// would, but its retry is not made (the call it is given is marked not retryable). Every
// real call is audited.
type oncePlatform struct {
	c *commission
}

func (o oncePlatform) Verify(ctx context.Context, cred verify.Credential, passageID string) (verify.Result, verify.Call, error) {
	res, call, err := o.c.client.Verify(ctx, cred, passageID)
	call.Source = verify.SourceLive
	o.c.audit(call)
	if call.Retryable() { // the unit would retry once; try asks once and decides by this answer
		call.Status, call.Result = 0, verify.ResultTimeout
	}
	return res, call, err
}

// masker hides the personal data of one credential (and of the answer about it) in
// anything printed: each raw value, and every form a request can carry it in (JSON-escaped
// as encoding/json writes it, URL query or path escaped, form-encoded, Go-quoted), is
// replaced by its mask.
type masker struct{ vals []maskedValue }

type maskedValue struct {
	what   string   // what it is: the token, the ID number, the name; empty for an answer's value
	forms  []string // the raw value and its encoded forms, longest first
	masked string
}

// minFreeMask is the length (bytes) from which a value is masked wherever it appears. A
// shorter one (a token "ok") is masked only where it stands alone in a field of the request
// (maskField): replacing it everywhere would garble unrelated words ("qr_token").
const minFreeMask = 6

// short says the value is shorter than minFreeMask (its raw form is the shortest).
func (v maskedValue) short() bool { return len(v.forms[len(v.forms)-1]) < minFreeMask }

func (m *masker) add(what, raw, masked string) {
	if raw == "" {
		return
	}
	forms := []string{raw, url.QueryEscape(raw), url.PathEscape(raw), strings.Trim(strconv.Quote(raw), `"`)}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, html := range []bool{true, false} {
		b.Reset()
		enc.SetEscapeHTML(html)
		_ = enc.Encode(raw)
		forms = append(forms, strings.Trim(strings.TrimSpace(b.String()), `"`))
	}
	sort.SliceStable(forms, func(i, j int) bool { return len(forms[i]) > len(forms[j]) })
	m.vals = append(m.vals, maskedValue{what, slices.Compact(forms), masked})
}

func newMasker(cred verify.Credential) *masker {
	m := &masker{}
	m.add("token", cred.QRToken, privacy.MaskToken(cred.QRToken))
	m.add("ID number", cred.IDNumber, privacy.MaskID(cred.IDNumber))
	m.add("name", cred.Name, privacy.MaskName(cred.Name))
	if len(cred.FaceJPEG) > 0 {
		m.add("face", base64.StdEncoding.EncodeToString(cred.FaceJPEG), fmt.Sprintf("<face JPEG, %d bytes>", len(cred.FaceJPEG)))
	}
	return m
}

// idLike is a resident ID number anywhere in a text.
var idLike = regexp.MustCompile(`\b\d{17}[\dXx]\b|\b\d{15}\b`)

// mask hides every value the masker knows (but short ones, see minFreeMask), and any ID
// number, in a text.
func (m *masker) mask(s string) string {
	var pairs [][2]string
	for _, v := range m.vals {
		if !v.short() {
			for _, f := range v.forms {
				pairs = append(pairs, [2]string{f, v.masked})
			}
		}
	}
	// Longest first, so that a value is masked before a part of it.
	sort.SliceStable(pairs, func(i, j int) bool { return len(pairs[i][0]) > len(pairs[j][0]) })
	flat := make([]string, 0, 2*len(pairs))
	for _, p := range pairs {
		flat = append(flat, p[0], p[1])
	}
	s = strings.NewReplacer(flat...).Replace(s)
	return idLike.ReplaceAllStringFunc(s, privacy.MaskID)
}

// maskField is mask for one field of the request (its URL, body, signed string), in which a
// short value is masked too where it stands alone: not next to a letter, digit or _.
func (m *masker) maskField(s string) string {
	s = m.mask(s)
	for _, v := range m.vals {
		if v.short() {
			for _, f := range v.forms {
				s = replaceAlone(s, f, v.masked)
			}
		}
	}
	return s
}

// shortNotes says which of the credential's values are masked only where they stand alone.
func (m *masker) shortNotes() []string {
	var notes []string
	for _, v := range m.vals {
		if v.what != "" && v.short() {
			notes = append(notes, fmt.Sprintf("the %s is shorter than %d characters: it is masked where it stands alone in the request, not inside other words", v.what, minFreeMask))
		}
	}
	return notes
}

// replaceAlone replaces each occurrence of old in s that no letter, digit or _ touches.
func replaceAlone(s, old, repl string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, old)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		before, _ := utf8.DecodeLastRuneInString(s[:i])
		after, _ := utf8.DecodeRuneInString(s[i+len(old):])
		b.WriteString(s[:i])
		if wordRune(before) || wordRune(after) {
			b.WriteString(old)
		} else {
			b.WriteString(repl)
		}
		s = s[i+len(old):]
	}
}

func wordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// learn adds the personal values an answer carries (the mapped ID number and name), and the
// values of other fields that may not show in clear (a name in the request id), which the
// mapped-fields table and the platform's errors would otherwise print.
func (m *masker) learn(reads []verify.Reading) {
	for _, r := range reads {
		switch {
		case r.Key == "id_number":
			m.add("", r.Raw, privacy.MaskID(r.Raw))
		case r.Key == "name":
			m.add("", r.Raw, privacy.MaskName(r.Raw))
		case r.Present && !shownClear(r, r.Raw):
			m.add("", r.Raw, fmt.Sprintf("«%d chars»", utf8.RuneCountInString(r.Raw)))
		}
	}
}

// tryFlags are try's credential flags.
type tryFlags struct {
	qr, idcard, name, face *string
}

func (f tryFlags) credential() (verify.Credential, error) {
	n := 0
	for _, v := range []string{*f.qr, *f.idcard, *f.face} {
		if v != "" {
			n++
		}
	}
	switch {
	case n != 1:
		return verify.Credential{}, errors.New("give exactly one of --qr TOKEN, --idcard NUMBER [--name NAME], --face JPEG")
	case *f.name != "" && *f.idcard == "":
		return verify.Credential{}, errors.New("--name goes with --idcard")
	case *f.qr != "":
		return verify.Credential{Kind: verify.KindQR, QRToken: *f.qr}, nil
	case *f.idcard != "":
		return verify.Credential{Kind: verify.KindIDCard, IDNumber: *f.idcard, Name: *f.name}, nil
	}
	st, err := os.Stat(*f.face)
	if err != nil {
		return verify.Credential{}, fmt.Errorf("--face: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() > verify.MaxFaceJPEG {
		return verify.Credential{}, fmt.Errorf("--face %s: want a regular JPEG file of at most %d bytes", *f.face, verify.MaxFaceJPEG)
	}
	b, err := os.ReadFile(*f.face)
	if err != nil {
		return verify.Credential{}, fmt.Errorf("--face: %w", err)
	}
	return verify.Credential{Kind: verify.KindFace, FaceJPEG: b}, nil
}

func cmdTry(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("try", "try --config FILE (--qr TOKEN | --idcard NUMBER [--name NAME] | --face JPEG)", stdout, stderr)
	path := fs.String("config", "", "config `FILE` of this unit")
	f := tryFlags{
		qr: fs.String("qr", "", "a health-code `TOKEN` to ask about"), idcard: fs.String("idcard", "", "an ID `NUMBER` to ask about"),
		name: fs.String("name", "", "the `NAME` on the ID card (with --idcard)"), face: fs.String("face", "", "a `JPEG` file of a face to ask about"),
	}
	tryUsage(fs)
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	cred, err := f.credential()
	if err != nil {
		fmt.Fprintf(stderr, "sentinel try: %v\n", err)
		return exitUsage
	}
	cfg, code := loadConfig(fs, *path, stderr)
	if cfg == nil {
		return code
	}
	c, code := openCommission("try", cfg, stderr)
	if c == nil {
		return code
	}
	defer c.close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return c.try(ctx, cred, stdout, stderr)
}

func tryUsage(fs *flag.FlagSet) {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sentinel try --config FILE (--qr TOKEN | --idcard NUMBER [--name NAME] | --face JPEG)\n\n"+
			"Asks the platform once, as the unit would (its mapping, its signing, its policy), and\n"+
			"prints the request (personal data masked, the signature as computed), the HTTP status\n"+
			"and time, the answer (masked), every mapped field as the unit reads it, and the verdict\n"+
			"the policy in force would give. The call is audited in the unit's outbox (purpose\n"+
			"commissioning); no record is made, no relay moves, no screen changes. It may run while\n"+
			"the daemon runs.\n\nExit codes: 0 the platform answered HTTP 200, usably, about the person asked, and\n"+
			"every mapped field resolved; 1 it did not (the result line says why), or the outbox\n"+
			"cannot be opened; 2 usage, invalid config, or a credential the unit refuses before any\n"+
			"call (a file that is not a JPEG, an ID number that fails its check digit).\n\n")
		fs.PrintDefaults()
	}
}

// try asks once and prints every step.
func (c *commission) try(ctx context.Context, cred verify.Credential, stdout, stderr io.Writer) int {
	mk := newMasker(cred)
	var x *verify.Exchange
	ctx = verify.WithTrace(ctx, func(e verify.Exchange) { x = &e })
	v := verify.NewVerifier(oncePlatform{c}, open.VerifierOptions(c.cfg, clock.Trusted))
	d := v.Decide(ctx, cred, "")
	if x == nil {
		return noCall(stdout, c, d)
	}
	var reads []verify.Reading
	var err error
	if len(x.Answer) > 0 {
		reads, err = c.mapping.ReadAnswer(c.mapping.Interface(cred), x.Answer)
		mk.learn(reads)
	}
	var out bytes.Buffer
	printExchange(&out, c, x, newAnswerView(reads, mk))
	var why []string // why the call does not prove the docking
	if len(x.Answer) > 0 {
		fmt.Fprintln(&out, "\nMapped fields:")
		if err != nil {
			fmt.Fprintf(&out, "  the answer cannot be read: %v\n", err)
			why = append(why, "the answer cannot be read")
		}
		printReadings(&out, reads)
		var unresolved []string
		for _, r := range reads {
			if r.Problem != "" {
				unresolved = append(unresolved, r.Key)
			}
		}
		if len(unresolved) > 0 {
			why = append(why, "mapped field(s) not resolved: "+strings.Join(unresolved, ", "))
		}
	}
	why = append(answerProblems(x, d, cred), why...)
	printVerdict(&out, c, d)
	if p := c.auditProblem(); p != "" {
		fmt.Fprintf(stderr, "sentinel try: %s\n", p)
		why = append(why, "the call was not audited")
	}
	if len(why) > 0 {
		fmt.Fprintf(&out, "\nResult: NOT PROVEN: %s.\n", strings.Join(why, "; "))
	} else {
		fmt.Fprintln(&out, "\nResult: OK: the platform answered and every mapped field resolved.")
	}
	fmt.Fprint(stdout, mk.mask(out.String()))
	if len(why) > 0 {
		return exitFailure
	}
	return exitOK
}

// answerProblems says why an answer is not one a passage would be decided by: no answer, an
// HTTP status other than 200 (a redirect, a 201, a 404 with a success body), a platform-side
// failure, or an answer about another person than the one asked (a wrong id_number path
// reads as one). Personal data in it is masked.
func answerProblems(x *verify.Exchange, d verify.Decision, cred verify.Credential) []string {
	var why []string
	switch {
	case x.Status == 0:
		why = append(why, "the platform did not answer")
	case x.Status != http.StatusOK:
		s := fmt.Sprintf("the platform answered HTTP %d, not 200", x.Status)
		if d.Call != nil && d.Call.RedirectHost != "" {
			s += " (a redirect to " + d.Call.RedirectHost + ", not followed)"
		}
		why = append(why, s)
	}
	if x.Status == http.StatusOK && (d.Call == nil || d.Call.Result != verify.ResultOK || d.Mode != verify.ModeOnline) {
		why = append(why, "no usable answer: the unit decides "+d.Reason)
	}
	if d.Mismatch != nil {
		why = append(why, fmt.Sprintf("the answer is about another person: its ID number is %s, not the %s asked (check response.id_number)",
			privacy.MaskID(d.Mismatch.IDNumber), privacy.MaskID(cred.IDNumber)))
	}
	return why
}

// noCall prints a decision made without asking the platform. A credential the unit refuses
// as such (a file that is not a JPEG, an ID number that fails its check) is bad input.
func noCall(w io.Writer, c *commission, d verify.Decision) int {
	code := exitFailure
	switch d.Reason {
	case verify.ReasonMalformedScan, verify.ReasonInvalidIDNumber:
		fmt.Fprintf(w, "Bad input, no call was made: the unit refuses this credential without asking the platform (%s).\n", d.Reason)
		code = exitUsage
	default:
		fmt.Fprintf(w, "No call was made: the unit decides this credential without asking the platform (%s).\n", d.Reason)
	}
	printVerdict(w, c, d)
	return code
}

// printExchange prints the request and the answer of one call: the request's fields masked
// by view's masker, the answer as view shows it (the rest is the caller's to mask).
func printExchange(w io.Writer, c *commission, x *verify.Exchange, view answerView) {
	mk := view.mk
	fmt.Fprintf(w, "Request (audited, purpose %s; mapping %s):\n  %s %s\n", record.PurposeCommissioning, c.mapping.Name, x.Method, mk.maskField(redactURL(x.URL)))
	keys := make([]string, 0, len(x.Header))
	for k := range x.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.Join(x.Header[k], ", ")
		if v != x.Signature || v == "" { // a signature carries no personal data; masking could spoil it
			v = mk.maskField(v)
		}
		fmt.Fprintf(w, "  %s: %s\n", k, v)
	}
	if len(x.Body) > 0 {
		fmt.Fprintf(w, "  body: %s\n", mk.maskField(string(x.Body)))
	}
	for _, n := range mk.shortNotes() {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	if x.Signature != "" {
		fmt.Fprintf(w, "  signed string: %q\n  signature: %s (%s)\n", mk.maskField(x.Signed), x.Signature, c.mapping.SigningAlgorithm(c.cfg.Platform.Signing))
	} else {
		fmt.Fprintln(w, "  unsigned (platform.secret_file is not set)")
	}
	fmt.Fprintln(w, "\nAnswer:")
	if x.Status == 0 {
		fmt.Fprintf(w, "  no answer after %s: %v\n", x.Latency.Round(time.Microsecond), x.Err)
		return
	}
	fmt.Fprintf(w, "  HTTP %d in %s", x.Status, x.Latency.Round(time.Microsecond))
	if d := x.RespHeader.Get("Date"); d != "" {
		fmt.Fprintf(w, " (platform Date: %s)", d)
	}
	fmt.Fprintln(w)
	if x.Err != nil {
		fmt.Fprintf(w, "  refused or failed: %v\n", x.Err)
	}
	printAnswer(w, x.Answer, view)
}

// redactURL is a URL as the commissioning commands print it: a password in it shows as ****.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(a URL that does not parse)"
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	// Redacted writes the password as xxxxx; **** is how the signed string shows the secret
	// (url.UserPassword would escape the stars). The username is escaped, so the first
	// ":xxxxx@" is the password's.
	return strings.Replace(u.Redacted(), ":xxxxx@", ":****@", 1)
}

// printVerdict prints the decision the unit would reach.
func printVerdict(w io.Writer, c *commission, d verify.Decision) {
	mode := d.Mode
	if d.Call == nil {
		mode = "on the unit, no call made"
	}
	fmt.Fprintf(w, "\nVerdict by the policy in force (%s, offline policy %s): %s %s (%s)\n", d.PolicyHash, c.cfg.Platform.OfflinePolicy, d.Verdict, d.Reason, mode)
	if d.Err != nil {
		fmt.Fprintf(w, "  because: %v\n", d.Err)
	}
}
