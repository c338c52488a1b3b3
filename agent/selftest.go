package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/sentinel-edge/sentinel/agent/clock"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/drivers/qrscan"
	"github.com/sentinel-edge/sentinel/drivers/relay"
	"github.com/sentinel-edge/sentinel/verify"
)

// Commissioning self-test (sentinel selftest): every check runs against the real devices
// and services the config names, and says what it found and, when it failed, what to do.
// Drivers and parts add their checks with RegisterCheck from their file's init.

// CheckStatus is the outcome of one check.
type CheckStatus string

// Check outcomes. NotApplicable is for a device this unit's config does not have.
const (
	CheckPass          CheckStatus = "PASS"
	CheckFail          CheckStatus = "FAIL"
	CheckNotApplicable CheckStatus = "N/A"
)

// CheckResult is what one check found. Detail and Fix never carry personal data or secrets.
type CheckResult struct {
	Status CheckStatus
	Detail string // what was found, e.g. "opened /dev/ttyS1 at 9600 baud"
	Fix    string // on failure: what the field engineer should do
}

// Pass, Fail and NotApplicable build results.
func Pass(format string, args ...any) CheckResult {
	return CheckResult{Status: CheckPass, Detail: fmt.Sprintf(format, args...)}
}

// Fail is a failed check with what was found and what to do.
func Fail(detail, fix string) CheckResult {
	return CheckResult{Status: CheckFail, Detail: detail, Fix: fix}
}

// NotApplicable is a check of a device this unit does not have.
func NotApplicable(format string, args ...any) CheckResult {
	return CheckResult{Status: CheckNotApplicable, Detail: fmt.Sprintf(format, args...)}
}

// CheckFunc checks one thing; it must return by ctx's deadline.
type CheckFunc func(ctx context.Context, cfg *config.Config) CheckResult

type check struct {
	name string
	fn   CheckFunc
}

var (
	checksMu sync.Mutex
	checks   []check
)

// RegisterCheck adds a commissioning check; checks run in registration order. A duplicate
// name panics (registration is a programming error).
func RegisterCheck(name string, fn CheckFunc) {
	checksMu.Lock()
	defer checksMu.Unlock()
	for _, c := range checks {
		if c.name == name {
			panic("agent: check registered twice: " + name)
		}
	}
	checks = append(checks, check{name, fn})
}

// CheckTimeout bounds each check; sentinel selftest --timeout sets it.
var CheckTimeout = 10 * time.Second

// CheckReport is one row of the self-test table.
type CheckReport struct {
	Name string
	CheckResult
	Took time.Duration
}

// SelfTest runs every registered check, one after another (they may share devices), and
// returns a row per check. ok is true only when no check failed.
func SelfTest(ctx context.Context, cfg *config.Config) (rows []CheckReport, ok bool) {
	checksMu.Lock()
	cs := append([]check(nil), checks...)
	checksMu.Unlock()
	ok = true
	for _, c := range cs {
		start := time.Now()
		r := runCheck(ctx, cfg, c)
		if r.Status != CheckPass && r.Status != CheckNotApplicable {
			ok = false
		}
		rows = append(rows, CheckReport{Name: c.name, CheckResult: r, Took: time.Since(start)})
	}
	return rows, ok
}

// runCheck runs one check with its own deadline; a panic or an overrun is a failure.
func runCheck(ctx context.Context, cfg *config.Config, c check) (r CheckResult) {
	cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	done := make(chan CheckResult, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- Fail(fmt.Sprintf("the check crashed: %v", p), "report this as a bug with the output of sentinel version; stack: "+firstLines(string(debug.Stack()), 6))
			}
		}()
		done <- c.fn(cctx, cfg)
	}()
	select {
	case r = <-done:
		if r.Status == "" {
			r.Status = CheckFail
		}
		return r
	case <-cctx.Done():
		return Fail(fmt.Sprintf("no answer within %s", CheckTimeout), "the device or service hangs: check its cable or network, then run selftest again")
	}
}

func firstLines(s string, n int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > n {
		ls = ls[:n]
	}
	return strings.Join(ls, " | ")
}

// Seams of the built-in checks; tests swap them.
var (
	lookupRelayPin = relay.Lookup
	openQRPort     = func(path string, baud int) (interface{ Close() error }, error) { return qrscan.OpenPort(path, baud) }
	// MinFreeDisk is the least free space the queue's filesystem must have.
	MinFreeDisk uint64 = 64 << 20
)

func init() {
	RegisterCheck("provisioned", checkProvisioned)
	RegisterCheck("qr scanner", checkQRScanner)
	RegisterCheck("barrier relay", checkRelay)
	RegisterCheck("platform", checkPlatform)
	RegisterCheck("broker", checkBroker)
	RegisterCheck("clock", checkClock)
	RegisterCheck("disk", checkDisk)
}

func checkProvisioned(_ context.Context, cfg *config.Config) CheckResult {
	ps := config.CheckProvisioned(cfg)
	if len(ps) == 0 {
		var set []string
		for _, k := range append(config.SecretKeys, config.PlatformKeyKey) {
			if v, _ := cfg.StringAt(k); v != "" {
				set = append(set, k)
			}
		}
		if len(set) == 0 {
			return Pass("device %s at venue %s; no secret files configured (platform requests unsigned)", cfg.Device.ID, cfg.Device.Venue)
		}
		return Pass("device %s at venue %s; %s set and readable", cfg.Device.ID, cfg.Device.Venue, strings.Join(set, ", "))
	}
	var ds []string
	for _, p := range ps {
		ds = append(ds, p.String())
	}
	return Fail(strings.Join(ds, "; "), "run sentinel provision for this unit (docs/field-guide.md, Provision)")
}

func checkQRScanner(_ context.Context, cfg *config.Config) CheckResult {
	q := cfg.Scanners.QR
	if q == nil {
		return NotApplicable("no QR scanner configured")
	}
	fi, err := os.Stat(q.Port)
	if errors.Is(err, fs.ErrNotExist) {
		return Fail(fmt.Sprintf("scanners.qr.port: %s does not exist", q.Port),
			"check the scanner's cable and power, then set scanners.qr.port to the device it appears as (ls -l /dev/ttyS* /dev/ttyUSB* /dev/ttyACM*)")
	}
	if err == nil && fi.Mode()&fs.ModeCharDevice == 0 {
		return Fail(fmt.Sprintf("scanners.qr.port: %s is not a serial device", q.Port), "set scanners.qr.port to the scanner's tty")
	}
	p, err := openQRPort(q.Port, q.Baud)
	if err != nil {
		fix := "stop the running daemon first (systemctl stop sentinel): it holds the port; otherwise check the cable"
		if strings.Contains(strings.ToLower(err.Error()), "permission") {
			fix = "the sentinel user must be in group dialout (the package adds it; re-login or reinstall), or fix the device's udev rule"
		}
		return Fail(fmt.Sprintf("scanners.qr.port: cannot open %s: %v", q.Port, err), fix)
	}
	if err := p.Close(); err != nil {
		return Fail(fmt.Sprintf("scanners.qr.port: %s opened but did not close: %v", q.Port, err), "unplug and replug the scanner")
	}
	return Pass("opened %s at %d baud", q.Port, q.Baud)
}

func checkRelay(_ context.Context, cfg *config.Config) CheckResult {
	b := cfg.Barrier
	switch b.Driver {
	case "none":
		return NotApplicable("style %s has no barrier", cfg.Device.Style)
	case "fake":
		return Fail("barrier.driver is fake: a simulated barrier that opens nothing",
			"set barrier.driver: gpio and barrier.pin to the relay's GPIO line")
	}
	pin, err := lookupRelayPin(b.Pin)
	if err != nil {
		return Fail(fmt.Sprintf("barrier.pin: %v", err), "set barrier.pin to the GPIO line the relay is wired to (docs/field-guide.md, Wire); the sentinel user must be in group gpio")
	}
	r, err := relay.New(pin, relay.Options{ActiveLow: b.ActiveLow})
	if err != nil {
		return Fail(fmt.Sprintf("barrier.pin: cannot claim %s: %v", b.Pin, err), "stop the running daemon first (systemctl stop sentinel); the sentinel user must be in group gpio")
	}
	if err := r.Halt(); err != nil {
		return Fail(fmt.Sprintf("barrier.pin: %s claimed but did not de-energise: %v", b.Pin, err), "check the relay board's power and wiring")
	}
	return Pass("claimed %s and left it de-energised (active_low %v)", b.Pin, b.ActiveLow)
}

func checkPlatform(ctx context.Context, cfg *config.Config) CheckResult {
	client, err := newPlatformClient(cfg, nil)
	if err != nil {
		return Fail(err.Error(), "fix the platform settings named above (sentinel provision writes them)")
	}
	call, err := client.Ping(ctx)
	if err != nil {
		return platformFail(cfg, "ping", call, err)
	}
	if cfg.Platform.SecretFile == "" {
		return Pass("%s answered ping in %s; requests unsigned (no platform.secret_file)", cfg.Platform.URL, call.Latency.Round(time.Millisecond))
	}
	// The ping is not signed; a verification is. Ask about a token no one holds: a platform
	// that checked the signature answers "unknown credential".
	_, vcall, err := client.Verify(ctx, verify.Credential{Kind: verify.KindQR, QRToken: SelfTestToken}, "selftest-"+time.Now().UTC().Format("20060102T150405Z"))
	if err != nil && !errors.Is(err, verify.ErrUnknownCredential) {
		return platformFail(cfg, "signed verification", vcall, err)
	}
	return Pass("%s answered ping in %s; signed request accepted (%s)", cfg.Platform.URL, call.Latency.Round(time.Millisecond), cfg.Platform.Signing)
}

// SelfTestToken is the QR token the self-test's signed probe asks about; no one holds it.
const SelfTestToken = "SENTINEL-SELFTEST-PROBE"

func platformFail(cfg *config.Config, what string, call verify.Call, err error) CheckResult {
	fix := "check platform.url, the network route and the firewall; the platform must answer " + what
	switch {
	case errors.Is(err, verify.ErrSignatureRejected) || call.Status == 401 || call.Status == 403:
		fix = "the platform refused the signature: check platform.app_key, platform.signing and the secret file against what the platform issued, and the clock"
	case errors.Is(err, verify.ErrUnreachable):
		fix = "the platform is unreachable: check platform.url, DNS, the route and the firewall"
	}
	status := ""
	if call.Status != 0 {
		status = fmt.Sprintf(" (HTTP %d)", call.Status)
	}
	return Fail(fmt.Sprintf("platform.url %s: %s failed%s: %v", cfg.Platform.URL, what, status, err), fix)
}

// brokerConnectTimeout bounds one broker connection attempt.
var brokerConnectTimeout = 5 * time.Second

func checkBroker(ctx context.Context, cfg *config.Config) CheckResult {
	tlsCfg, err := uplinkTLS(cfg)
	if err != nil {
		return Fail(err.Error(), "run sentinel provision again, or fix the uplink.tls files")
	}
	user, pass, err := uplinkCredentials(cfg)
	if err != nil {
		return Fail(err.Error(), "fix uplink.username_file / uplink.password_file")
	}
	var ok, bad []string
	for i, b := range cfg.Uplink.Brokers {
		if err := probeBroker(ctx, b, cfg.Uplink.ClientID+"-selftest", tlsCfg, user, pass); err != nil {
			bad = append(bad, fmt.Sprintf("uplink.brokers[%d] %s: %v", i, b, err))
			continue
		}
		ok = append(ok, b)
	}
	if len(bad) > 0 {
		return Fail(strings.Join(bad, "; "), "check the broker address and port, the firewall, and for ssl:// the CA and client certificate (uplink.tls.*); a refused login means wrong credentials or ACL")
	}
	return Pass("connected to %s", strings.Join(ok, ", "))
}

func probeBroker(ctx context.Context, url, clientID string, tlsCfg *tls.Config, user, pass string) error {
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(brokerConnectTimeout)
	if tlsCfg != nil {
		opts.SetTLSConfig(tlsCfg)
	}
	if user != "" {
		opts.SetUsername(user).SetPassword(pass)
	}
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		go func() { <-tok.Done(); c.Disconnect(0) }()
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return err
	}
	c.Disconnect(100)
	return nil
}

// uplinkTLS builds the TLS settings from uplink.tls.* when this build has them and they are
// set; nil otherwise.
func uplinkTLS(cfg *config.Config) (*tls.Config, error) {
	ca, _ := cfg.StringAt("uplink.tls.ca_file")
	cert, _ := cfg.StringAt("uplink.tls.cert_file")
	key, _ := cfg.StringAt("uplink.tls.key_file")
	if ca == "" && cert == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("uplink.tls.ca_file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("uplink.tls.ca_file: %s holds no PEM certificate", ca)
		}
		tc.RootCAs = pool
	}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("uplink.tls.cert_file/key_file: %v", err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	return tc, nil
}

func uplinkCredentials(cfg *config.Config) (user, pass string, err error) {
	read := func(key string) (string, error) {
		p, _ := cfg.StringAt(key)
		if p == "" {
			return "", nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("%s: %v", key, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if user, err = read("uplink.username_file"); err != nil {
		return "", "", err
	}
	pass, err = read("uplink.password_file")
	return user, pass, err
}

func checkClock(_ context.Context, _ *config.Config) CheckResult {
	now := time.Now().UTC().Format(time.RFC3339)
	if clockState() == clock.Synced {
		return Pass("synchronised; now %s", now)
	}
	return Fail(fmt.Sprintf("not confirmed synchronised (the kernel's NTP status says unsynchronised, or the date is before %d); now %s", clock.MinTrustedYear, now),
		"enable time sync (timedatectl set-ntp true, or chrony) and let the unit reach an NTP server; a wrong clock breaks the nucleic-acid age rule and record times")
}

func checkDisk(_ context.Context, cfg *config.Config) CheckResult {
	dir := filepath.Dir(cfg.Queue.Path)
	free, err := freeBytes(dir)
	if err != nil {
		return Fail(fmt.Sprintf("queue.path: cannot inspect %s: %v", dir, err), "create the directory, or let systemd create it (StateDirectory=sentinel makes /var/lib/sentinel)")
	}
	f, err := os.CreateTemp(dir, ".selftest-*")
	if err != nil {
		return Fail(fmt.Sprintf("queue.path: %s is not writable: %v", dir, err), "run selftest as the sentinel user (sudo -u sentinel sentinel selftest ...), or fix the directory's owner")
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	if free < MinFreeDisk {
		return Fail(fmt.Sprintf("queue.path: only %s free on %s (need %s)", human(free), dir, human(MinFreeDisk)), "free space on that filesystem: old logs, core dumps")
	}
	return Pass("%s free on %s", human(free), dir)
}

func human(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", b>>10)
	}
}
