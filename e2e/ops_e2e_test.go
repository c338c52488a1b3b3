package e2e_test

import (
	"bufio"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/mqtttest"
)

// opsConfig is an agent config with the operations keys.
func opsConfig(w *world, device, platform, brokerURL, extra string) string {
	return fmt.Sprintf(`device: {id: %s, venue: "350582-0001", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: %s, baud: 9600}
platform: {url: "http://%s", timeout: 500ms}
policy: {health_codes: [green], nat_max_age: 72h}
barrier: {driver: fake, pulse: 300ms}
queue: {path: %s}
uplink: {brokers: ["%s"], topic_prefix: sentinel/v1}
%s`, device, w.Port, platform, filepath.Join(w.Dir, "queue.db"), brokerURL, extra)
}

// statusWatch keeps the last status of every unit.
type statusWatch struct {
	mu      sync.Mutex
	last    map[string]record.Status // by device
	changed chan struct{}
}

func watchStatuses(t *testing.T, broker *mqtttest.Broker) *statusWatch {
	t.Helper()
	return watchOn(t, mqttClient(t, broker, "status-watch"))
}

// watchOn keeps the last status of every unit, read with the connected client c.
func watchOn(t *testing.T, c mqtt.Client) *statusWatch {
	t.Helper()
	sw := &statusWatch{last: map[string]record.Status{}, changed: make(chan struct{})}
	tok := c.Subscribe("sentinel/v1/+/+/status", 1, func(_ mqtt.Client, m mqtt.Message) {
		var s record.Status
		if err := json.Unmarshal(m.Payload(), &s); err != nil {
			t.Errorf("status on %s is not JSON: %v", m.Topic(), err)
			return
		}
		sw.mu.Lock()
		sw.last[s.Device] = s
		close(sw.changed)
		sw.changed = make(chan struct{})
		sw.mu.Unlock()
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return sw
}

// wait waits until the status of device satisfies cond.
func (sw *statusWatch) wait(t *testing.T, device, what string, cond func(record.Status) bool) record.Status {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		sw.mu.Lock()
		s, ok := sw.last[device]
		ch := sw.changed
		sw.mu.Unlock()
		if ok && cond(s) {
			return s
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("status of %s never showed %s; last: %+v", device, what, s)
		}
	}
}

func mqttClient(t *testing.T, broker *mqtttest.Broker, id string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID(id).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// listeningSockets returns the local addresses of the TCP sockets pid listens on, from
// /proc/<pid>/fd and /proc/net/tcp{,6}.
func listeningSockets(t *testing.T, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, f := range []string{"tcp", "tcp6"} {
		file, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] { // 0A: LISTEN
				continue
			}
			out = append(out, procAddr(fields[1]))
		}
		file.Close()
	}
	return out
}

// procAddr decodes /proc/net/tcp's "0100007F:1F90" (little-endian words) to "127.0.0.1:8080".
func procAddr(s string) string {
	hostHex, portHex, _ := strings.Cut(s, ":")
	b, _ := hex.DecodeString(hostHex)
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	port, _ := strconv.ParseUint(portHex, 16, 16)
	return net.JoinHostPort(net.IP(b).String(), strconv.FormatUint(port, 10))
}

// TestE2EOperations runs three agents against one Mosquitto: their retained statuses (with a
// will), the fleet report, metrics, a signed remote command, and the listening sockets.
func TestE2EOperations(t *testing.T) {
	broker := mqtttest.Start(t)
	sw := watchStatuses(t, broker)
	pub, priv, _ := ed25519.GenerateKey(nil)

	type unit struct {
		w            *world
		device       string
		screen, metr int
		ag           *proc
		cfg          string
	}
	units := []*unit{{device: "ops-a"}, {device: "ops-b"}, {device: "ops-c"}}
	installs := []string{
		`install: {unit: 福清市某某超市, location: 北门入口, brand: Acme, style_label: 闸机一体机, status: installed}`,
		`install: {unit: 福清市某某医院, location: "门诊楼, 东侧", brand: Acme, style_label: 立柱式, status: installing}`,
		`install: {unit: "=HYPERLINK(1)", location: 南门, brand: Bolt, style_label: 闸机一体机, status: installed}`,
	}
	for i, u := range units {
		u.w = newWorld(t)
		u.screen, u.metr = freePort(t), freePort(t)
		platform := u.w.APIAddr
		if i == 2 {
			platform = fmt.Sprintf("127.0.0.1:%d", freePort(t)) // nothing listens: never docked
		}
		extra := fmt.Sprintf("%s\nscreen: {listen: \"127.0.0.1:%d\"}\nmetrics: {listen: \"127.0.0.1:%d\"}\ncommands: {operator_keys: [\"%s\"]}\nstatus: {heartbeat: 2s}\n",
			installs[i], u.screen, u.metr, base64.StdEncoding.EncodeToString(pub))
		u.cfg = opsConfig(u.w, u.device, platform, broker.URL(), extra)
		u.ag = u.w.agent(t, u.cfg)
	}
	a, b, c := units[0], units[1], units[2]

	// Statuses: online, the install facts, docked once the platform answered.
	sa := sw.wait(t, a.device, "docked", func(s record.Status) bool { return s.Online && s.Docked })
	if sa.Unit != "福清市某某超市" || sa.Location != "北门入口" || sa.Brand != "Acme" || sa.Style != "闸机一体机" ||
		sa.InstallStatus != "installed" || sa.Version == "" || sa.Readers["qr"] != "online" || sa.Clock == "" {
		t.Errorf("status of %s: %+v", a.device, sa)
	}
	// Installing: not docked, whatever the platform answers (issue #14: the table's progress
	// and its docking column agree).
	sw.wait(t, b.device, "installing, not docked", func(s record.Status) bool {
		return s.Online && !s.Docked && s.InstallStatus == "installing" && s.Progress != nil && s.Progress.Step == 1
	})
	sw.wait(t, c.device, "online, platform offline", func(s record.Status) bool { return s.Online && s.Platform == "offline" && !s.Docked })

	// No open doors: every listening socket of every agent is on loopback.
	for _, u := range units {
		socks := listeningSockets(t, u.ag.cmd.Process.Pid)
		if len(socks) < 2 {
			t.Errorf("%s listens on %v; want the screen and the metrics", u.device, socks)
		}
		for _, s := range socks {
			host, _, _ := net.SplitHostPort(s)
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				t.Errorf("%s listens on %s, beyond loopback", u.device, s)
			}
		}
	}

	// A scan shows in the metrics.
	fmt.Fprintln(a.w.Scan, "HC-GREEN-FRESH")
	a.ag.waitFor(t, regexp.MustCompile(`msg=passage .*gate=opened`), 10*time.Second)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", a.metr)
	body := waitMetric(t, metricsURL, `sentinel_passages_total{mode="online",reason="ok",verdict="pass"} 1`)
	for _, want := range []string{
		`sentinel_passages_total{mode="online",reason="ok",verdict="pass"} 1`,
		`sentinel_platform_calls_total{interface="qr",outcome="ok"} 1`,
		`sentinel_decision_duration_seconds_count 1`,
		`sentinel_reader_online{reader="qr"} 1`,
		`sentinel_uplink_connected 1`,
		`sentinel_control_connected 1`,
		`sentinel_queue_pending`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// A signed command sets the mode; an unsigned one is refused. Both are answered.
	ctl := mqttClient(t, broker, "operator")
	replies := make(chan record.CommandReply, 4)
	base := "sentinel/v1/350582-0001/" + a.device + "/cmd/"
	if tok := ctl.Subscribe(base+"+/reply", 1, func(_ mqtt.Client, m mqtt.Message) {
		var r record.CommandReply
		_ = json.Unmarshal(m.Payload(), &r)
		replies <- r
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	now := time.Now()
	signed, _ := record.SignCommand(priv, record.Command{ID: "e2e-1", Name: "mode", Venue: "350582-0001", Device: a.device,
		IssuedAt: now, ExpiresAt: now.Add(time.Minute), Args: map[string]string{"mode": "locked"}})
	wantSynced := time.Now().Year() >= 2024 // a plausible clock checks expiry, NTP-confirmed or not
	ctl.Publish(base+"mode", 1, false, signed)
	r := waitReply(t, replies)
	if wantSynced && (r.ID != "e2e-1" || r.Result != "ok") {
		t.Errorf("mode command: %+v", r)
	}
	if !wantSynced && r.Detail != "clock_unsynced" {
		t.Errorf("mode command on an unsynced clock: %+v, want refused clock_unsynced", r)
	}
	ctl.Publish(base+"open", 1, false, []byte(`{"cmd":{"id":"e2e-2","name":"open"}}`))
	if r := waitReply(t, replies); r.Result != "refused" || r.Detail != "unsigned" || r.ID != "e2e-2" {
		t.Errorf("unsigned command: %+v", r)
	}
	if wantSynced {
		sw.wait(t, a.device, "mode locked", func(s record.Status) bool { return s.Mode == "locked" })
		fmt.Fprintln(a.w.Scan, "HC-GREEN-FRESH")
		a.ag.waitFor(t, regexp.MustCompile(`msg=passage .*verdict=pass .*gate=not_opened`), 10*time.Second)

		// The mode survives a restart: the unit comes back locked, and records the restore.
		events := broker.Subscribe(t, "sentinel/v1/350582-0001/"+a.device+"/event")
		a.ag.stop(t)
		sw.wait(t, a.device, "offline after a stop", func(s record.Status) bool { return !s.Online })
		a.ag = a.w.agent(t, a.cfg)
		sw.wait(t, a.device, "locked after a restart", func(s record.Status) bool { return s.Online && s.Mode == "locked" && s.Docked })
		if !regexp.MustCompile(`msg="gate mode restored" .*mode=locked`).MatchString(a.ag.output()) {
			t.Errorf("no restore in the log:\n%s", a.ag.output())
		}
		waitEvent(t, events, func(ev record.Event) bool {
			return ev.Type == "mode_restored" && ev.Mode == "locked" && ev.Source == "agent"
		})
		fmt.Fprintln(a.w.Scan, "HC-GREEN-FRESH")
		a.ag.waitFor(t, regexp.MustCompile(`msg=passage .*verdict=pass .*gate=not_opened`), 10*time.Second)
	} else {
		t.Log("this machine's clock reads before 2024: commands are refused (clock_unsynced), as documented")
	}

	// A clean stop leaves an offline status; a killed unit gets its will.
	b.ag.stop(t)
	sw.wait(t, b.device, "offline after a stop", func(s record.Status) bool { return !s.Online && !s.Will })
	_ = c.ag.cmd.Process.Signal(syscall.SIGKILL)
	<-c.ag.done
	sw.wait(t, c.device, "offline by the will", func(s record.Status) bool { return !s.Online && s.Will })

	// The fleet report: a header, then one row per unit.
	sentinel := filepath.Join(a.w.Bins, "sentinel")
	out, err := exec.Command(sentinel, "report", "fleet", "--broker", broker.URL(), "--format", "csv").Output()
	if err != nil {
		t.Fatalf("report fleet: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("report has %d lines, want a header and 3 rows:\n%s", len(lines), out)
	}
	wantRows := []string{
		"serial number,unit name,install status,install location,product brand,product style,progress,docking done,last seen,queue depth,online,venue,device,remarks",
		"1,福清市某某超市,installed,北门入口,Acme,闸机一体机,3/3 docked,yes,",
		`2,福清市某某医院,installing,"门诊楼, 东侧",Acme,立柱式,1/3 installing,no,`,
		"3,=HYPERLINK(1),installed,南门,Bolt,闸机一体机,\"2/3 installed, not docked\",no,",
	}
	for i, want := range wantRows {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("report line %d:\n got %s\nwant %s...", i, lines[i], want)
		}
	}
	cells, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil || len(cells) != 4 {
		t.Fatalf("report is not CSV of 4 rows: %v", err)
	}
	for i, dev := range []string{a.device, b.device, c.device} {
		if r := cells[i+1]; r[11] != "350582-0001" || r[12] != dev {
			t.Errorf("row %d is not the unit's venue and device: %q", i+1, r)
		}
	}
	for i, online := range []string{"yes", "no", "no"} {
		if r := cells[i+1]; r[10] != online {
			t.Errorf("row %d online=%s, want %s", i+1, r[10], online)
		}
	}
	// Every "no" has its reason; the "yes" its evidence.
	for i, want := range []string{"verified by the unit's platform check", "unit stopped since", "unit offline (its last will"} {
		if r := cells[i+1]; !strings.Contains(r[13], want) {
			t.Errorf("row %d remarks %q, want %q", i+1, r[13], want)
		}
	}
	x, err := exec.Command(sentinel, "report", "fleet", "--broker", broker.URL(), "--format", "xlsx-csv").Output()
	if err != nil {
		t.Fatalf("report fleet xlsx-csv: %v", err)
	}
	if !strings.HasPrefix(string(x), "\uFEFFserial number,") || !strings.Contains(string(x), "\r\n1,") || !strings.Contains(string(x), ",'=HYPERLINK(1),") {
		t.Errorf("xlsx-compatible csv lacks the BOM, CRLF or formula guard:\n%q", x)
	}
	md, err := exec.Command(sentinel, "report", "fleet", "--broker", broker.URL(), "--format", "md", "--lang", "zh").Output()
	if err != nil {
		t.Fatalf("report fleet md: %v", err)
	}
	if !strings.HasPrefix(string(md), "| 序号 | 单位名称 | 安装状态 |") || strings.Count(string(md), "\n") != 5 {
		t.Errorf("markdown report:\n%s", md)
	}
	if o, err := exec.Command(sentinel, "report", "fleet", "--broker", "nonsense").CombinedOutput(); err == nil || !strings.Contains(string(o), "--broker") {
		t.Errorf("a bad --broker should be a usage error naming it: %v\n%s", err, o)
	}
}

// waitEvent waits for an event record that satisfies cond.
func waitEvent(t *testing.T, c *mqtttest.Collector, cond func(record.Event) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, m := range c.Messages() {
			var ev record.Event
			if json.Unmarshal(m.Payload, &ev) == nil && cond(ev) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no such event within 10s among %d", len(c.Messages()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitReply(t *testing.T, ch <-chan record.CommandReply) record.CommandReply {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no command reply within 10s")
	}
	return record.CommandReply{}
}

// waitMetric scrapes url until it shows want (the metrics follow the passage's log line).
func waitMetric(t *testing.T, url, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		body := httpGet(t, url)
		if strings.Contains(body, want) || time.Now().After(deadline) {
			return body
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}
