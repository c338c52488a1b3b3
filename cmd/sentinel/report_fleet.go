package main

import (
	"bytes"
	"crypto/tls"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sentinel-edge/sentinel/agent/clock"
	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/open"
	"github.com/sentinel-edge/sentinel/agent/record"
)

// Fleet report tunables; package variables so tests can shrink them.
var (
	// fleetQuiet: once retained statuses stop arriving for this long, the collection is
	// complete (the broker sends all retained messages right after the SUBACK).
	fleetQuiet = 500 * time.Millisecond
	// fleetConnectTimeout bounds connecting and subscribing.
	fleetConnectTimeout = 10 * time.Second
	// fleetNow is the reporting machine's clock, against which last-seen times are judged.
	fleetNow = time.Now
)

// fleetMinYear: a last-seen time before it comes from a clock that was never set (a unit
// that booted at 1970), whatever the unit claims.
const fleetMinYear = 2024

// fleetMaxAhead is how far ahead of the reporting machine a last-seen time may lie before it
// is marked implausible.
const fleetMaxAhead = 24 * time.Hour

func init() {
	registerReport("fleet", "installation statistics table of every unit, from the retained statuses", cmdReportFleet)
}

// fleetColumns are the notice's columns, then ours.
var fleetColumns = map[string][]string{
	"en": {"serial number", "unit name", "install status", "install location", "product brand", "product style",
		"progress", "docking done", "last seen", "queue depth", "online", "venue", "device", "remarks"},
	"zh": {"序号", "单位名称", "安装状态", "安装地点", "产品品牌", "产品样式", "进度", "是否完成对接", "最后在线", "待上传记录", "在线", "场所编码", "设备编号", "备注"},
}

var fleetWords = map[string]map[string]string{
	"en": {"installed": "installed", "installing": "installing", "unknown": "unknown", "yes": "yes", "no": "no",
		"nofacts": "no install facts in the status (%s missing): counted as installing",
		"p1":      "1/3 installing", "p2": "2/3 installed, not docked", "p3": "3/3 docked", "unsynced": " (clock unsynced)",
		"implausible": " (clock implausible)", "will": "unit offline (its last will: power, network or crash) since %s; docked when last seen: %s",
		"stopped": "unit stopped since %s; docked when last seen: %s", "evidence": "verified by %s at %s (version %s)"},
	"zh": {"installed": "已安装", "installing": "安装中", "unknown": "未知", "yes": "是", "no": "否",
		"nofacts": "状态中没有安装信息（缺少 %s），按安装中统计",
		"p1":      "1/3 安装中", "p2": "2/3 已安装未对接", "p3": "3/3 已对接", "unsynced": "（设备时钟未校准）",
		"implausible": "（设备时间异常）", "will": "设备离线（遗嘱消息：断电、断网或崩溃），最后在线 %s；当时是否对接：%s",
		"stopped": "设备已停止，最后在线 %s；当时是否对接：%s", "evidence": "由 %s 于 %s 验证（版本 %s）"},
}

// fleetUnit is one unit's retained status.
type fleetUnit struct {
	topic  string
	status record.Status
}

const fleetSynopsis = "report fleet (--config FILE | --broker URL [--ca F] [--cert F --key F] [--username-file F --password-file F]) [--format csv|md|xlsx-csv] [--prefix P] [--venue V] [--lang en|zh]"

func cmdReportFleet(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("report fleet", fleetSynopsis, stdout, stderr)
	cfgPath := fs.String("config", "", "a unit's config `FILE`: its brokers, TLS files, credential files and topic prefix, exactly as the unit connects")
	broker := fs.String("broker", "", "MQTT broker `URL`, e.g. ssl://mqtt.city.example:8883 (with --config: instead of uplink.brokers)")
	ca := fs.String("ca", "", "CA certificate `FILE` of an ssl:// broker (with --config: instead of uplink.tls.ca_file)")
	cert := fs.String("cert", "", "client certificate `FILE` for a broker that asks for one (with --key)")
	key := fs.String("key", "", "client key `FILE` of --cert (owner-only, like the unit's)")
	userFile := fs.String("username-file", "", "`FILE` whose first line is the broker user name (with --password-file)")
	passFile := fs.String("password-file", "", "`FILE` whose first line is the broker password (owner-only)")
	format := fs.String("format", "csv", "output `format`: csv, md, or xlsx-csv (csv with UTF-8 BOM and CRLF, for spreadsheet programs)")
	prefix := fs.String("prefix", "", "topic `prefix` (default: uplink.topic_prefix with --config, else sentinel/v1)")
	venue := fs.String("venue", "", "only this `venue` code (default: every venue)")
	lang := fs.String("lang", "en", "header and value `language`: en or zh")
	wait := fs.Duration("wait", fleetConnectTimeout, "longest time to wait for the broker")
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	prefixGiven := false
	fs.Visit(func(f *flag.Flag) { prefixGiven = prefixGiven || f.Name == "prefix" })
	switch {
	case prefixGiven && *prefix == "":
		fmt.Fprintln(stderr, "sentinel report fleet: --prefix must not be empty (leave it out for the default)")
		return exitUsage
	case strings.ContainsAny(*prefix+*venue, "+#"):
		fmt.Fprintln(stderr, "sentinel report fleet: --prefix and --venue must not contain MQTT wildcards (+ or #); leave --venue out for every venue")
		return exitUsage
	}
	conn, code := fleetConnection(fleetFlags{cfgPath: *cfgPath, broker: *broker, ca: *ca, cert: *cert, key: *key, user: *userFile, pass: *passFile, prefix: *prefix}, stderr)
	if code >= 0 {
		return code
	}
	if *format == "xlsx" {
		*format = "xlsx-csv"
	}
	if !slices.Contains([]string{"csv", "md", "xlsx-csv"}, *format) {
		fmt.Fprintf(stderr, "sentinel report fleet: --format must be csv, md or xlsx-csv, got %q\n", *format)
		return exitUsage
	}
	if _, ok := fleetColumns[*lang]; !ok {
		fmt.Fprintf(stderr, "sentinel report fleet: --lang must be en or zh, got %q\n", *lang)
		return exitUsage
	}
	if strings.ContainsAny(conn.prefix, "+#") { // uplink.topic_prefix of --config
		fmt.Fprintln(stderr, "sentinel report fleet: the topic prefix must not contain MQTT wildcards (+ or #), got "+conn.prefix)
		return exitUsage
	}
	if *venue == "" {
		*venue = "+"
	}
	filter := conn.prefix + "/" + *venue + "/+/status"
	units, bad, err := collectStatuses(conn, filter, *wait)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel report fleet: %v%s\n", err, conn.hint())
		return exitFailure
	}
	for _, b := range bad {
		fmt.Fprintf(stderr, "sentinel report fleet: skipped %s\n", b)
	}
	if len(bad) > 0 {
		fmt.Fprintf(stderr, "sentinel report fleet: %d status message(s) skipped, %d unit(s) reported\n", len(bad), len(units))
	}
	rows := fleetRows(units, *lang)
	var out bytes.Buffer
	switch *format {
	case "md":
		writeMarkdown(&out, fleetColumns[*lang], rows)
	case "csv":
		writeCSV(&out, fleetColumns[*lang], rows, false)
	case "xlsx-csv":
		writeCSV(&out, fleetColumns[*lang], rows, true)
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		fmt.Fprintf(stderr, "sentinel report fleet: write: %v\n", err)
		return exitFailure
	}
	if len(units) == 0 {
		fmt.Fprintf(stderr, "sentinel report fleet: no unit status under %s on %s: check --prefix and --venue, and that the units reach this broker (their status is retained)\n",
			filter, strings.Join(conn.brokers, ", "))
		return exitFailure
	}
	return exitOK
}

// fleetFlags are the connection flags of report fleet.
type fleetFlags struct{ cfgPath, broker, ca, cert, key, user, pass, prefix string }

// fleetConn is how the report reaches the broker: as a unit does (open.TLS,
// open.Credentials), from its config or from the explicit files.
type fleetConn struct {
	brokers    []string
	prefix     string
	tls        *tls.Config
	user, pass string
	tlsGiven   bool // a CA or client certificate was given
}

// hint says what a failed TLS connection may lack.
func (c fleetConn) hint() string {
	for _, b := range c.brokers {
		if u, err := url.Parse(b); err == nil && slices.Contains([]string{"ssl", "tls", "mqtts", "wss"}, u.Scheme) && !c.tlsGiven {
			return " (a TLS broker: give --config FILE of a unit, or --ca FILE, and --cert FILE --key FILE when it asks for a client certificate)"
		}
	}
	return ""
}

// fleetConnection builds the connection from the flags; a non-negative code means stop.
func fleetConnection(f fleetFlags, stderr io.Writer) (fleetConn, int) {
	bad := func(format string, a ...any) (fleetConn, int) {
		fmt.Fprintf(stderr, "sentinel report fleet: "+format+"\n", a...)
		return fleetConn{}, exitUsage
	}
	var cfg config.Config
	if f.cfgPath != "" {
		c, err := config.Load(f.cfgPath)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return fleetConn{}, exitUsage
		}
		cfg = *c
	} else {
		cfg.Uplink.TopicPrefix = "sentinel/v1"
	}
	if f.broker != "" {
		cfg.Uplink.Brokers = []string{f.broker}
	}
	if len(cfg.Uplink.Brokers) == 0 {
		return bad("--config FILE or --broker URL is required")
	}
	for _, b := range cfg.Uplink.Brokers {
		if u, err := url.Parse(b); err != nil || u.Host == "" || !slices.Contains([]string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}, u.Scheme) {
			return bad("--broker must be a URL like tcp://host:1883 or ssl://host:8883, got %q", b)
		}
	}
	switch {
	case (f.cert == "") != (f.key == ""):
		return bad("--cert and --key go together")
	case f.pass != "" && f.user == "":
		return bad("--password-file needs --username-file")
	}
	if f.ca != "" {
		cfg.Uplink.TLS.CAFile = f.ca
	}
	if f.cert != "" {
		cfg.Uplink.TLS.CertFile, cfg.Uplink.TLS.KeyFile = f.cert, f.key
	}
	if f.user != "" {
		cfg.Uplink.UsernameFile, cfg.Uplink.PasswordFile = f.user, f.pass
	}
	if f.prefix != "" {
		cfg.Uplink.TopicPrefix = f.prefix
	}
	c := fleetConn{brokers: cfg.Uplink.Brokers, prefix: cfg.Uplink.TopicPrefix,
		tlsGiven: cfg.Uplink.TLS.CAFile != "" || cfg.Uplink.TLS.CertFile != ""}
	var err error
	if c.tls, err = open.TLS(cfg.Uplink.TLS); err != nil {
		fmt.Fprintf(stderr, "sentinel report fleet: %v\n", err)
		return fleetConn{}, exitUsage
	}
	if c.user, c.pass, err = open.Credentials(&cfg); err != nil {
		fmt.Fprintf(stderr, "sentinel report fleet: %v\n", err)
		return fleetConn{}, exitUsage
	}
	return c, -1
}

// collectStatuses subscribes to the retained statuses and returns them once they stop
// arriving; bad lists the messages that could not be read.
func collectStatuses(conn fleetConn, filter string, wait time.Duration) ([]fleetUnit, []string, error) {
	var (
		mu    sync.Mutex
		byTop = map[string]fleetUnit{}
		bad   []string
		got   = make(chan struct{}, 1)
	)
	handler := func(_ mqtt.Client, m mqtt.Message) {
		var s record.Status
		err := json.Unmarshal(m.Payload(), &s)
		if p := bytes.TrimSpace(m.Payload()); err == nil && (len(p) == 0 || p[0] != '{') {
			err = errors.New("not a JSON object") // null decodes into an empty status
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case len(m.Payload()) == 0:
			// a cleared retained status: the unit was decommissioned
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s: not a status message (%d bytes): %v", m.Topic(), len(m.Payload()), err))
		default:
			byTop[m.Topic()] = fleetUnit{topic: m.Topic(), status: s}
		}
		select {
		case got <- struct{}{}:
		default:
		}
	}
	c, err := fleetConnect(conn, wait)
	if err != nil {
		return nil, nil, err
	}
	defer c.Disconnect(100)
	tok := c.Subscribe(filter, 1, handler)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		return nil, nil, fmt.Errorf("subscribe to %s: %v", filter, tok.Error())
	}
	quiet := time.NewTimer(fleetQuiet)
	defer quiet.Stop()
	for done := false; !done; {
		select {
		case <-got:
			quiet.Reset(fleetQuiet)
		case <-quiet.C:
			done = true
		}
	}
	mu.Lock()
	defer mu.Unlock()
	units := make([]fleetUnit, 0, len(byTop))
	for _, u := range byTop {
		units = append(units, u)
	}
	sort.Slice(units, func(i, j int) bool { return units[i].topic < units[j].topic })
	return units, append([]string(nil), bad...), nil
}

// fleetConnect connects to the first broker that takes the report's client (the brokers in
// order, as a unit tries them), as the unit would: its TLS and credentials.
func fleetConnect(conn fleetConn, wait time.Duration) (mqtt.Client, error) {
	var errs []string
	for _, b := range conn.brokers {
		opts := mqtt.NewClientOptions().AddBroker(b).
			SetClientID(fmt.Sprintf("sentinel-report-%d", time.Now().UnixNano())).
			SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(wait)
		if conn.tls != nil {
			opts.SetTLSConfig(conn.tls.Clone())
		}
		if conn.user != "" {
			opts.SetUsername(conn.user).SetPassword(conn.pass)
		}
		c := mqtt.NewClient(opts)
		tok := c.Connect()
		if tok.WaitTimeout(wait) && tok.Error() == nil {
			return c, nil
		}
		err := tok.Error()
		if err == nil {
			err = fmt.Errorf("timed out after %s", wait)
		}
		errs = append(errs, fmt.Sprintf("connect to %s: %v", b, err))
	}
	return nil, errors.New(strings.Join(errs, "; "))
}

// fleetRows builds the table rows, one per unit, numbered from 1.
func fleetRows(units []fleetUnit, lang string) [][]string {
	w := fleetWords[lang]
	word := func(k string) string {
		if v, ok := w[k]; ok {
			return v
		}
		return k
	}
	rows := make([][]string, 0, len(units))
	for i, u := range units {
		s := u.status
		installStatus, progress, docked, remarks := fleetTruth(s, w)
		seen := s.LastSeen
		if seen == "" {
			seen = s.TS
		}
		if seen != "" {
			seen += w[seenTrust(s.Clock, seen, fleetNow())]
		}
		yes := func(b bool) string {
			if b {
				return w["yes"]
			}
			return w["no"]
		}
		dev, venue := s.Device, s.Venue
		if parts := strings.Split(u.topic, "/"); len(parts) >= 3 {
			// The topic names the unit even when the payload does not.
			venue, dev = parts[len(parts)-3], parts[len(parts)-2]
		}
		rows = append(rows, []string{strconv.Itoa(i + 1), s.Unit, word(installStatus), s.Location, s.Brand, s.Style,
			progress, yes(docked), seen, strconv.FormatInt(s.QueuePending, 10), yes(s.Online), venue, dev, remarks})
	}
	return rows
}

// fleetTruth is what a unit's status says for the table: its install status and progress
// as the unit derived them from its facts (older units without progress: from
// install_status and docked), docked only while the unit is online, and the remarks: every
// reason for a "no", or the evidence of a "yes".
func fleetTruth(s record.Status, w map[string]string) (installStatus, progress string, docked bool, remarks string) {
	installStatus, docked = s.InstallStatus, s.Docked
	step := 1
	var notes []string
	switch {
	case s.Progress == nil && s.InstallStatus == "":
		// No install facts at all ({}, a bare {"online":true}): nothing says it is installed.
		installStatus = "unknown"
		missing := []string{"install_status", "progress"}
		for _, f := range []struct{ name, v string }{{"unit", s.Unit}, {"location", s.Location}, {"brand", s.Brand}} {
			if f.v == "" {
				missing = append(missing, f.name)
			}
		}
		notes = append(notes, fmt.Sprintf(w["nofacts"], strings.Join(missing, ", ")))
	case s.Progress != nil && s.Progress.Step >= 1 && s.Progress.Step <= 3:
		step = s.Progress.Step
	case s.InstallStatus != "installing" && s.Docked:
		step = 3
	case s.InstallStatus != "installing":
		step = 2
	}
	if s.Progress != nil {
		installStatus = map[bool]string{true: "installed", false: "installing"}[step >= 2]
	}
	progress = w[fmt.Sprintf("p%d", step)]
	if !s.Online {
		docked = false
		seen := or(or(s.LastSeen, s.TS), "?")
		form := w["stopped"]
		if s.Will {
			form = w["will"]
		}
		notes = append(notes, fmt.Sprintf(form, seen, map[bool]string{true: w["yes"], false: w["no"]}[s.Docked]))
	}
	switch {
	case s.Docking != nil && len(s.Docking.Why) > 0:
		notes = append(notes, s.Docking.Why...)
	case s.Docking != nil && s.Docking.Check != "":
		check := map[string]string{record.SelftestCLI: "sentinel selftest", record.SelftestCommand: "the selftest command",
			record.SelftestDocking: "sentinel docking-check", record.SelftestPlatform: "the unit's platform check"}[s.Docking.Check]
		if check == "" {
			check = s.Docking.Check
		}
		notes = append(notes, fmt.Sprintf(w["evidence"], check, s.Docking.At, s.Docking.Version))
	case s.Progress != nil:
		notes = append(notes, s.Progress.Why...)
	}
	return installStatus, progress, docked, strings.Join(notes, "; ")
}

// seenTrust says how far a unit's last-seen time can be trusted: "" (it can), "unsynced" (the
// unit says its clock is not synchronised) or "implausible" (it says synced, but the time
// does not parse, is before 2024, or lies more than a day ahead of now).
func seenTrust(clockState, seen string, now time.Time) string {
	if clockState != clock.Synced {
		return "unsynced"
	}
	t, err := time.Parse(time.RFC3339Nano, seen)
	if err != nil || t.Year() < fleetMinYear || t.After(now.Add(fleetMaxAhead)) {
		return "implausible"
	}
	return ""
}

// writeCSV writes RFC 4180 CSV; for spreadsheets (xlsx) with a UTF-8 BOM, CRLF line ends and
// formula-looking cells neutralised.
func writeCSV(w io.Writer, header []string, rows [][]string, spreadsheet bool) {
	if spreadsheet {
		_, _ = w.Write([]byte("\uFEFF"))
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = spreadsheet
	_ = cw.Write(header)
	for _, r := range rows {
		if spreadsheet {
			r = slices.Clone(r)
			for i, c := range r {
				if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
					r[i] = "'" + c
				}
			}
		}
		_ = cw.Write(r)
	}
	cw.Flush()
}

func writeMarkdown(w io.Writer, header []string, rows [][]string) {
	esc := func(s string) string {
		return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
	}
	line := func(cells []string) {
		parts := make([]string, len(cells))
		for i, c := range cells {
			parts[i] = esc(c)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(parts, " | "))
	}
	line(header)
	seps := make([]string, len(header))
	for i := range seps {
		seps[i] = "---"
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
	for _, r := range rows {
		line(r)
	}
}
