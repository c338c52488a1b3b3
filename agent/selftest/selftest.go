package selftest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sentinel-edge/sentinel/agent/clock"
	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/open"
	"github.com/sentinel-edge/sentinel/verify"
)

// Status is the outcome of one check.
type Status string

// Check outcomes. StatusNotApplicable is for a device this unit's config does not have.
const (
	StatusPass          Status = "PASS"
	StatusFail          Status = "FAIL"
	StatusNotApplicable Status = "N/A"
)

// Result is what one check found. Detail and Fix never carry personal data or secrets.
type Result struct {
	Status Status
	Detail string // what was found, e.g. "opened /dev/ttyS1 at 9600 baud"
	Fix    string // on failure: what the field engineer should do
}

func passed(format string, args ...any) Result {
	return Result{Status: StatusPass, Detail: fmt.Sprintf(format, args...)}
}

func failed(detail, fix string) Result { return Result{Status: StatusFail, Detail: detail, Fix: fix} }

func notApplicable(format string, args ...any) Result {
	return Result{Status: StatusNotApplicable, Detail: fmt.Sprintf(format, args...)}
}

// Row is one row of the self-test table.
type Row struct {
	Name string
	Result
	Took time.Duration
}

// DefaultTimeout bounds each check unless Options.Timeout says otherwise.
const DefaultTimeout = 10 * time.Second

// Options tune the self-test.
type Options struct {
	// Timeout bounds each check (sentinel selftest --timeout); 0 means DefaultTimeout.
	Timeout time.Duration
	// Clock says whether the wall clock is trusted; nil means clock.State.
	Clock func() string
	// MinFreeDisk is the least free space the queue's filesystem must have; 0 means 64 MiB.
	MinFreeDisk uint64
	// BrokerTimeout bounds one broker connection attempt; 0 means 5s.
	BrokerTimeout time.Duration
	// Platform, when set, is the client the platform check asks (a running daemon's, whose
	// pings its audit records) instead of one built from the config; Audit, when set, is
	// told of the check's signed request (and the passage id it sent), for the audit.
	Platform *verify.Client
	Audit    func(passage string, c verify.Call)
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Clock == nil {
		o.Clock = clock.State
	}
	if o.MinFreeDisk == 0 {
		o.MinFreeDisk = 64 << 20
	}
	if o.BrokerTimeout <= 0 {
		o.BrokerTimeout = 5 * time.Second
	}
	return o
}

// checkFunc checks one thing; it must return by ctx's deadline.
type checkFunc func(ctx context.Context, cfg *config.Config, opt Options) Result

type check struct {
	name string
	fn   checkFunc
}

// checks are the commissioning checks, in the order the table shows them. Each builds what it
// checks through agent/open, as the daemon does.
var checks = []check{
	{"provisioned", checkProvisioned},
	{"qr scanner", checkQRScanner},
	{"barrier relay", checkRelay},
	{"platform", checkPlatform},
	{"broker", checkBroker},
	{"clock", checkClock},
	{"disk", checkDisk},
	{"id-card reader", checkIDCardReader},
	{"camera", checkCamera},
	{"face trigger", checkFaceTrigger},
	{"input presence", inputCheck("presence")},
	{"input exit_button", inputCheck("exit_button")},
	{"input door_sensor", inputCheck("door_sensor")},
	{"input fire_alarm", inputCheck("fire_alarm")},
	{"input tamper", inputCheck("tamper")},
}

// Run runs every check, one after another (they may share devices), and returns a row per
// check. ok is true only when no check failed.
func Run(ctx context.Context, cfg *config.Config, opt Options) (rows []Row, ok bool) {
	return runChecks(ctx, cfg, opt.withDefaults(), checks)
}

func runChecks(ctx context.Context, cfg *config.Config, opt Options, cs []check) (rows []Row, ok bool) {
	ok = true
	for _, c := range cs {
		start := time.Now()
		r := runCheck(ctx, cfg, opt, c)
		if r.Status != StatusPass && r.Status != StatusNotApplicable {
			ok = false
		}
		rows = append(rows, Row{Name: c.name, Result: r, Took: time.Since(start)})
	}
	return rows, ok
}

// runCheck runs one check with its own deadline; a panic or an overrun is a failure.
func runCheck(ctx context.Context, cfg *config.Config, opt Options, c check) (r Result) {
	cctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	done := make(chan Result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- failed(fmt.Sprintf("the check crashed: %v", p), "report this as a bug with the output of sentinel version; stack: "+firstLines(string(debug.Stack()), 6))
			}
		}()
		done <- c.fn(cctx, cfg, opt)
	}()
	select {
	case r = <-done:
		if r.Status == "" {
			r.Status = StatusFail
		}
		return r
	case <-cctx.Done():
		return failed(fmt.Sprintf("no answer within %s", opt.Timeout), "the device or service hangs: check its cable or network, then run selftest again")
	}
}

func firstLines(s string, n int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > n {
		ls = ls[:n]
	}
	return strings.Join(ls, " | ")
}

func checkProvisioned(_ context.Context, cfg *config.Config, opt Options) Result {
	ps := config.CheckProvisioned(cfg)
	if len(ps) == 0 {
		var set []string
		for _, k := range append(config.SecretKeys, config.PlatformKeyKey) {
			if v, _ := cfg.StringAt(k); v != "" {
				set = append(set, k)
			}
		}
		if len(set) == 0 {
			return passed("device %s at venue %s; no secret files configured (platform requests unsigned)", cfg.Device.ID, cfg.Device.Venue)
		}
		return passed("device %s at venue %s; %s set and readable", cfg.Device.ID, cfg.Device.Venue, strings.Join(set, ", "))
	}
	var ds []string
	for _, p := range ps {
		ds = append(ds, p.String())
	}
	return failed(strings.Join(ds, "; "), "run sentinel provision for this unit (docs/field-guide.md, Provision)")
}

func checkQRScanner(_ context.Context, cfg *config.Config, opt Options) Result {
	q := cfg.Scanners.QR
	if q == nil {
		return notApplicable("no QR scanner configured")
	}
	fi, err := os.Stat(q.Port)
	if errors.Is(err, fs.ErrNotExist) {
		return failed(fmt.Sprintf("scanners.qr.port: %s does not exist", q.Port),
			"check the scanner's cable and power, then set scanners.qr.port to the device it appears as (ls -l /dev/ttyS* /dev/ttyUSB* /dev/ttyACM*)")
	}
	if err == nil && fi.Mode()&fs.ModeCharDevice == 0 {
		return failed(fmt.Sprintf("scanners.qr.port: %s is not a serial device", q.Port), "set scanners.qr.port to the scanner's tty")
	}
	if _, err := open.QRScanner(cfg, nil, nil); err != nil { // opens and closes the port, as run does
		fix := "stop the running daemon first (systemctl stop sentinel): it holds the port; otherwise check the cable"
		if strings.Contains(strings.ToLower(err.Error()), "permission") {
			fix = "the sentinel user must be in group dialout (the package adds it; re-login or reinstall), or fix the device's udev rule"
		}
		return failed(fmt.Sprintf("cannot open %s: %v", q.Port, err), fix)
	}
	return passed("opened %s at %d baud", q.Port, q.Baud)
}

func checkRelay(_ context.Context, cfg *config.Config, opt Options) Result {
	b := cfg.Barrier
	switch b.Driver {
	case "none":
		return notApplicable("style %s has no barrier", cfg.Device.Style)
	}
	r, err := open.Relay(b) // claims the line and de-energises it, as run does
	if err != nil {
		return failed(err.Error(), "set barrier.pin to the GPIO line the relay is wired to (docs/field-guide.md, Wire); stop the running daemon first (systemctl stop sentinel); the sentinel user must be in group gpio")
	}
	if err := r.Halt(); err != nil {
		return failed(fmt.Sprintf("barrier.pin: %s claimed but did not de-energise: %v", b.Pin, err), "check the relay board's power and wiring")
	}
	if b.Driver == open.BarrierFake {
		// An explicit config choice (a bench unit, a demo): it passes, and says it drives no
		// relay, so that a real unit left on it is caught by whoever reads the table.
		return passed("simulated (barrier.driver fake): the relay logic runs on an in-memory line and drives no barrier; a bench unit. On a gate set barrier.driver: gpio and barrier.pin")
	}
	return passed("claimed %s and left it de-energised (active_low %v)", b.Pin, b.ActiveLow)
}

func checkPlatform(ctx context.Context, cfg *config.Config, opt Options) Result {
	client := opt.Platform
	if client == nil {
		c, err := open.Platform(cfg, nil, func() bool { return opt.Clock() == clock.Synced })
		if err != nil {
			return failed(err.Error(), "fix the platform settings named above (sentinel provision writes them)")
		}
		client = c
	}
	call, err := client.Ping(ctx)
	if err != nil {
		return platformFail(cfg, "ping", call, err)
	}
	if cfg.Platform.SecretFile == "" {
		return passed("%s answered ping in %s; requests unsigned (no platform.secret_file)", cfg.Platform.URL, call.Latency.Round(time.Millisecond))
	}
	// The ping is not signed; a verification is. Ask about a token no one holds: a platform
	// that checked the signature answers "unknown credential".
	probe := "selftest-" + time.Now().UTC().Format("20060102T150405Z")
	_, vcall, err := client.Verify(ctx, verify.Credential{Kind: verify.KindQR, QRToken: SelfTestToken}, probe)
	if opt.Audit != nil {
		vcall.Source = verify.SourceLive
		opt.Audit(probe, vcall)
	}
	if err != nil && !errors.Is(err, verify.ErrUnknownCredential) {
		return platformFail(cfg, "signed verification", vcall, err)
	}
	return passed("%s answered ping in %s; signed request accepted (%s)", cfg.Platform.URL, call.Latency.Round(time.Millisecond), cfg.Platform.Signing)
}

// SelfTestToken is the QR token the self-test's signed probe asks about; no one holds it.
const SelfTestToken = "SENTINEL-SELFTEST-PROBE"

func platformFail(cfg *config.Config, what string, call verify.Call, err error) Result {
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
	return failed(fmt.Sprintf("platform.url %s: %s failed%s: %v", cfg.Platform.URL, what, status, err), fix)
}

func checkBroker(ctx context.Context, cfg *config.Config, opt Options) Result {
	tlsCfg, err := open.TLS(cfg.Uplink.TLS)
	if err != nil {
		return failed(err.Error(), "run sentinel provision again, or fix the uplink.tls files")
	}
	user, pass, err := open.Credentials(cfg)
	if err != nil {
		return failed(err.Error(), "fix uplink.username_file / uplink.password_file")
	}
	var ok, bad []string
	for i, b := range cfg.Uplink.Brokers {
		if err := probeBroker(ctx, b, open.ClientID(cfg)+"-selftest", tlsCfg, user, pass, opt.BrokerTimeout); err != nil {
			bad = append(bad, fmt.Sprintf("uplink.brokers[%d] %s: %v", i, b, err))
			continue
		}
		ok = append(ok, b)
	}
	if len(bad) > 0 {
		return failed(strings.Join(bad, "; "), "check the broker address and port, the firewall, and for ssl:// the CA and client certificate (uplink.tls.*); a refused login means wrong credentials or ACL")
	}
	return passed("connected to %s", strings.Join(ok, ", "))
}

func probeBroker(ctx context.Context, url, clientID string, tlsCfg *tls.Config, user, pass string, timeout time.Duration) error {
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(timeout)
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

func checkClock(_ context.Context, _ *config.Config, opt Options) Result {
	now := time.Now().UTC().Format(time.RFC3339)
	if opt.Clock() == clock.Synced {
		return passed("synchronised; now %s", now)
	}
	return failed(fmt.Sprintf("not confirmed synchronised (the kernel's NTP status says unsynchronised, or the date is before %d); now %s", clock.MinTrustedYear, now),
		"enable time sync (timedatectl set-ntp true, or chrony) and let the unit reach an NTP server; a wrong clock breaks the nucleic-acid age rule and record times")
}

func checkDisk(_ context.Context, cfg *config.Config, opt Options) Result {
	dir := filepath.Dir(cfg.Queue.Path)
	free, err := freeBytes(dir)
	if err != nil {
		return failed(fmt.Sprintf("queue.path: cannot inspect %s: %v", dir, err), "create the directory, or let systemd create it (StateDirectory=sentinel makes /var/lib/sentinel)")
	}
	f, err := os.CreateTemp(dir, ".selftest-*")
	if err != nil {
		return failed(fmt.Sprintf("queue.path: %s is not writable: %v", dir, err), "run selftest as the sentinel user (sudo -u sentinel sentinel selftest ...), or fix the directory's owner")
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	if free < opt.MinFreeDisk {
		return failed(fmt.Sprintf("queue.path: only %s free on %s (need %s)", human(free), dir, human(opt.MinFreeDisk)), "free space on that filesystem: old logs, core dumps")
	}
	return passed("%s free on %s", human(free), dir)
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
