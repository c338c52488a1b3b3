package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
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
		"progress", "docking done", "last seen", "queue depth", "online", "venue", "device"},
	"zh": {"序号", "单位名称", "安装状态", "安装地点", "产品品牌", "产品样式", "进度", "是否完成对接", "最后在线", "待上传记录", "在线", "场所编码", "设备编号"},
}

var fleetWords = map[string]map[string]string{
	"en": {"installed": "installed", "installing": "installing", "yes": "yes", "no": "no",
		"p1": "1/3 installing", "p2": "2/3 installed, not docked", "p3": "3/3 docked", "unsynced": " (clock unsynced)",
		"implausible": " (clock implausible)"},
	"zh": {"installed": "已安装", "installing": "安装中", "yes": "是", "no": "否",
		"p1": "1/3 安装中", "p2": "2/3 已安装未对接", "p3": "3/3 已对接", "unsynced": "（设备时钟未校准）",
		"implausible": "（设备时间异常）"},
}

// fleetUnit is one unit's retained status.
type fleetUnit struct {
	topic  string
	status record.Status
}

func cmdReportFleet(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("report fleet", "report fleet --broker URL [--format csv|md|xlsx-csv] [--prefix P] [--venue V] [--lang en|zh]", stdout, stderr)
	broker := fs.String("broker", "", "MQTT broker `URL`, e.g. tcp://127.0.0.1:1883")
	format := fs.String("format", "csv", "output `format`: csv, md, or xlsx-csv (csv with UTF-8 BOM and CRLF, for spreadsheet programs)")
	prefix := fs.String("prefix", "sentinel/v1", "topic `prefix` (uplink.topic_prefix)")
	venue := fs.String("venue", "", "only this `venue` (device.venue); every venue when not given")
	lang := fs.String("lang", "en", "header and value `language`: en or zh")
	wait := fs.Duration("wait", fleetConnectTimeout, "longest time to wait for the broker")
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	if *venue == "" {
		*venue = "+"
	}
	if *broker == "" {
		fmt.Fprintln(stderr, "sentinel report fleet: --broker URL is required")
		return exitUsage
	}
	if u, err := url.Parse(*broker); err != nil || u.Host == "" || !slices.Contains([]string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}, u.Scheme) {
		fmt.Fprintf(stderr, "sentinel report fleet: --broker must be a URL like tcp://host:1883, got %q\n", *broker)
		return exitUsage
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
	if strings.ContainsAny(*prefix+*venue, "#") || (*venue != "+" && strings.Contains(*venue, "+")) {
		fmt.Fprintln(stderr, "sentinel report fleet: --prefix and --venue must not contain MQTT wildcards")
		return exitUsage
	}
	filter := *prefix + "/" + *venue + "/+/status"
	units, bad, err := collectStatuses(*broker, filter, *wait)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel report fleet: %v\n", err)
		return exitFailure
	}
	for _, b := range bad {
		fmt.Fprintf(stderr, "sentinel report fleet: skipped %s\n", b)
	}
	if len(bad) > 0 {
		fmt.Fprintf(stderr, "sentinel report fleet: %d status message(s) skipped, %d unit(s) reported\n", len(bad), len(units))
	}
	if len(units) == 0 {
		fmt.Fprintln(stderr, emptyFleetHint(*broker, filter))
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
	return exitOK
}

// emptyFleetHint says why a fleet report has no row: the broker was reached and holds no
// retained status under the filter.
func emptyFleetHint(broker, filter string) string {
	return fmt.Sprintf("sentinel report fleet: no unit found: the broker %s was reached but holds no retained status on %s. "+
		"Check --prefix against the units' uplink.topic_prefix and --venue against their device.venue; "+
		"a unit publishes its status once it runs and reaches this broker; the broker's ACL may hide the statuses from this login", broker, filter)
}

// collectStatuses subscribes to the retained statuses and returns them once they stop
// arriving; bad lists the messages that could not be read.
func collectStatuses(broker, filter string, wait time.Duration) ([]fleetUnit, []string, error) {
	var (
		mu    sync.Mutex
		byTop = map[string]fleetUnit{}
		bad   []string
		got   = make(chan struct{}, 1)
	)
	handler := func(_ mqtt.Client, m mqtt.Message) {
		var s record.Status
		err := json.Unmarshal(m.Payload(), &s)
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
	opts := mqtt.NewClientOptions().AddBroker(broker).
		SetClientID(fmt.Sprintf("sentinel-report-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(wait)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		err := tok.Error()
		if err == nil {
			err = fmt.Errorf("timed out after %s", wait)
		}
		return nil, nil, fmt.Errorf("connect to %s: %w", broker, err)
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
		progress := w["p1"]
		if s.InstallStatus != "installing" {
			progress = w["p2"]
			if s.Docked {
				progress = w["p3"]
			}
		}
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
		rows = append(rows, []string{strconv.Itoa(i + 1), s.Unit, word(s.InstallStatus), s.Location, s.Brand, s.Style,
			progress, yes(s.Docked), seen, strconv.FormatInt(s.QueuePending, 10), yes(s.Online), venue, dev})
	}
	return rows
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
