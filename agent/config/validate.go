package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults that the docs name.
const (
	DefaultQRBaud        = 9600
	DefaultQRMaxLength   = 512
	DefaultTimeout       = 800 * time.Millisecond
	DefaultNATMaxAge     = 72 * time.Hour
	DefaultPulse         = 800 * time.Millisecond
	MaxPulse             = 10 * time.Second
	DefaultQueuePath     = "/var/lib/sentinel/queue.db"
	DefaultTopicPrefix   = "sentinel/v1"
	DefaultSynchronous   = "FULL"
	maxPlatformTimeout   = 30 * time.Second
	minQRMaxLength       = 16
	maxQRMaxLength       = 4096
	DefaultLogLevel      = "info"
	DefaultLogFormat     = "text"
	defaultBarrierDriver = "none"
)

// HealthCodes are the colours a policy may allow.
var HealthCodes = []string{"green", "yellow", "red"}

// section is one part of the config tree, in its own file: the defaults it applies and the
// validation it makes (either may be nil).
type section struct {
	defaults func(c *Config, present func(key string) bool)
	validate func(c *Config) []Problem
}

// sections are applied in this order: every section's defaults, first to last, then every
// section's validation. A section's defaults may rely on those before it (the platform's
// budget on platform.timeout, the hash key's place on queue.path).
var sections = []section{
	{coreDefaults, coreValidate},         // this file: the keys of the first issue
	{devicesDefaults, devicesValidate},   // devices.go
	{opsDefaults, opsValidate},           // ops.go
	{platformDefaults, validatePlatform}, // platform.go
	{queueDefaults, queueValidate},       // queue.go
	{recordsDefaults, recordsValidate},   // records.go
}

// applyDefaults fills what the file left out; present says whether a key was written, so an
// explicit zero (nat_max_age: 0s) is kept.
func (c *Config) applyDefaults(present func(key string) bool) {
	for _, s := range sections {
		if s.defaults != nil {
			s.defaults(c, present)
		}
	}
}

func (c *Config) validate() []Problem {
	var ps []Problem
	for _, s := range sections {
		if s.validate != nil {
			ps = append(ps, s.validate(c)...)
		}
	}
	return ps
}

// zeroRefused are the keys whose zero makes no sense and which, left out, get a default:
// written as 0 they are refused, naming the key, rather than replaced by the default in
// silence. (Keys where 0 means "off", like policy.nat_max_age or queue.max_bytes, are not
// here.)
var zeroRefused = []string{
	"scanners.qr.baud", "scanners.qr.max_length", "scanners.idcard.baud",
	"platform.timeout", "platform.budget", "platform.cache_ttl", "platform.probe_interval",
	"barrier.pulse", "barrier.max_pulse", "camera.timeout", "inputs.door_sensor.held_open",
	"uplink.max_inflight", "uplink.backoff_base", "uplink.backoff_cap", "uplink.backoff_reset",
	"screen.verdict_hold", "commands.max_age", "status.heartbeat",
}

// writtenZeros are the zeroRefused keys the file wrote as 0 (read before the defaults).
func (c *Config) writtenZeros(present func(key string) bool) []string {
	var zs []string
	for _, key := range zeroRefused {
		if !present(key) {
			continue
		}
		if v, _ := c.lookup(key); v.IsValid() && v.IsZero() {
			zs = append(zs, key)
		}
	}
	return zs
}

// refuseZeros is a problem for each written zero, naming the default it would have had
// (read after the defaults).
func (c *Config) refuseZeros(keys []string) []Problem {
	var ps []Problem
	for _, key := range keys {
		v, _ := c.lookup(key)
		zero, def := "0", fmt.Sprint(v.Interface())
		if d, ok := v.Interface().(time.Duration); ok {
			zero, def = "0s", d.String()
		}
		ps = append(ps, Problemf(key, "must be > 0, got %s (leave it out for the default, %s)", zero, def))
	}
	return ps
}

func coreDefaults(c *Config, present func(key string) bool) {
	if q := c.Scanners.QR; q != nil {
		if q.Baud == 0 {
			q.Baud = DefaultQRBaud
		}
		if q.MaxLength == 0 {
			q.MaxLength = DefaultQRMaxLength
		}
	}
	if c.Platform.Timeout == 0 {
		c.Platform.Timeout = DefaultTimeout
	}
	if !present("policy.nat_max_age") {
		c.Policy.NATMaxAge = DefaultNATMaxAge
	}
	if c.Policy.HealthCodes == nil {
		c.Policy.HealthCodes = []string{"green"}
	}
	if c.Barrier.Driver == "" && !c.HasBarrier() {
		c.Barrier.Driver = defaultBarrierDriver
	}
	if c.Barrier.Pulse == 0 {
		c.Barrier.Pulse = DefaultPulse
	}
	if c.Queue.Path == "" {
		c.Queue.Path = DefaultQueuePath
	}
	if c.Queue.Synchronous == "" {
		c.Queue.Synchronous = DefaultSynchronous
	}
	c.Queue.Synchronous = strings.ToUpper(c.Queue.Synchronous)
	if c.Uplink.TopicPrefix == "" {
		c.Uplink.TopicPrefix = DefaultTopicPrefix
	}
	if c.Uplink.ClientID == "" && c.Device.ID != "" {
		c.Uplink.ClientID = "sentinel-" + c.Device.Venue + "-" + c.Device.ID
	}
	if c.Log.Level == "" {
		c.Log.Level = DefaultLogLevel
	}
	if c.Log.Format == "" {
		c.Log.Format = DefaultLogFormat
	}
}

// HasBarrier says whether the device style drives a barrier.
func (c *Config) HasBarrier() bool {
	return c.Device.Style == StyleGateAllInOne || c.Device.Style == StylePillar
}

// ident is what may stand in an MQTT topic level and a file name.
var ident = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// problems collects the problems of a validation step.
type problems []Problem

func (ps *problems) add(key, format string, args ...any) {
	*ps = append(*ps, Problemf(key, format, args...))
}

func (ps *problems) oneOf(key, v string, allowed []string) {
	if !slices.Contains(allowed, v) {
		ps.add(key, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	}
}

func (ps *problems) ident(key, v string) {
	switch {
	case v == "":
		ps.add(key, "is required")
	case !ident.MatchString(v):
		ps.add(key, "must be 1-64 letters, digits, '.', '_' or '-' (it is used in MQTT topics), got %q", v)
	}
}

// coreValidate checks the keys of the first issue, section by section.
func coreValidate(c *Config) []Problem {
	var ps problems
	for _, step := range []func(*Config, *problems){validateDevice, validateQR, validatePlatformCore, validatePolicyCore, validateBarrier, validateQueueUplink, validateLog} {
		step(c, &ps)
	}
	return ps
}

func validateDevice(c *Config, ps *problems) {
	ps.ident("device.id", c.Device.ID)
	ps.ident("device.venue", c.Device.Venue)
	if c.Device.Style == "" {
		ps.add("device.style", "is required (one of %s)", strings.Join(Styles, ", "))
	} else {
		ps.oneOf("device.style", c.Device.Style, Styles)
	}
}

func validateQR(c *Config, ps *problems) {
	q := c.Scanners.QR
	if q == nil {
		if c.Scanners.IDCard == nil && c.FaceTrigger() == CameraTriggerNone {
			ps.add("scanners", "at least one scanner must be configured (scanners.qr or scanners.idcard), or a face trigger (camera.trigger)")
		}
		return
	}
	ps.oneOf("scanners.qr.driver", q.Driver, []string{"serial", "evdev"})
	if q.Driver == "serial" && q.Port == "" {
		ps.add("scanners.qr.port", "is required for driver serial (e.g. /dev/ttyS1)")
	}
	if q.Baud < 0 || q.Baud > 4_000_000 {
		ps.add("scanners.qr.baud", "must be between 1 and 4000000, got %d", q.Baud)
	}
	if q.MaxLength < minQRMaxLength || q.MaxLength > maxQRMaxLength {
		ps.add("scanners.qr.max_length", "must be between %d and %d, got %d", minQRMaxLength, maxQRMaxLength, q.MaxLength)
	}
}

func validatePlatformCore(c *Config, ps *problems) {
	if c.Platform.URL == "" {
		ps.add("platform.url", "is required (e.g. http://127.0.0.1:8700)")
	} else if u, err := url.Parse(c.Platform.URL); err != nil {
		ps.add("platform.url", "must be an http:// or https:// URL with a host; it does not parse as a URL")
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		ps.add("platform.url", "must be an http:// or https:// URL with a host, got %q", u.Redacted())
	} else if badPort(u) {
		ps.add("platform.url", "port %s is not a TCP port (1-65535), in %q", u.Port(), u.Redacted())
	}
	if c.Platform.Timeout < 0 || c.Platform.Timeout > maxPlatformTimeout {
		ps.add("platform.timeout", "must be > 0 and at most %s, got %s", maxPlatformTimeout, c.Platform.Timeout)
	}
}

func validatePolicyCore(c *Config, ps *problems) {
	if len(c.Policy.HealthCodes) == 0 {
		ps.add("policy.health_codes", "must allow at least one colour (%s)", strings.Join(HealthCodes, ", "))
	}
	for i, hc := range c.Policy.HealthCodes {
		ps.oneOf(fmt.Sprintf("policy.health_codes[%d]", i), hc, HealthCodes)
	}
	if c.Policy.NATMaxAge < 0 {
		ps.add("policy.nat_max_age", "must be >= 0 (0 disables the check), got %s", c.Policy.NATMaxAge)
	}
}

func validateBarrier(c *Config, ps *problems) {
	switch {
	case c.Barrier.Driver == "":
		ps.add("barrier.driver", "is required for style %s (gpio, or fake for simulation)", c.Device.Style)
	case !slices.Contains([]string{"gpio", "fake", "none"}, c.Barrier.Driver):
		ps.oneOf("barrier.driver", c.Barrier.Driver, []string{"gpio", "fake", "none"})
	case c.HasBarrier() && c.Barrier.Driver == "none":
		ps.add("barrier.driver", "style %s drives a barrier: set gpio (or fake for simulation)", c.Device.Style)
	case !c.HasBarrier() && slices.Contains(Styles, c.Device.Style) && c.Barrier.Driver != "none":
		ps.add("barrier.driver", "style %s has no barrier: set none, got %q", c.Device.Style, c.Barrier.Driver)
	}
	if c.Barrier.Driver == "gpio" && c.Barrier.Pin == "" {
		ps.add("barrier.pin", "is required for driver gpio (e.g. GPIO17)")
	}
	if c.Barrier.Pulse <= 0 || c.Barrier.Pulse > MaxPulse {
		ps.add("barrier.pulse", "must be > 0 and at most %s, got %s", MaxPulse, c.Barrier.Pulse)
	}
}

func validateQueueUplink(c *Config, ps *problems) {
	if c.Queue.Path == "" {
		ps.add("queue.path", "is required")
	}
	ps.oneOf("queue.synchronous", c.Queue.Synchronous, []string{"FULL", "NORMAL"})
	if len(c.Uplink.Brokers) == 0 {
		ps.add("uplink.brokers", "needs at least one broker URL (e.g. tcp://127.0.0.1:1883)")
	}
	for i, b := range c.Uplink.Brokers {
		u, err := url.Parse(b)
		if err != nil {
			ps.add(fmt.Sprintf("uplink.brokers[%d]", i), "must be a broker URL like tcp://host:1883 or ssl://host:8883; it does not parse as a URL")
		} else if u.Hostname() == "" || u.Port() == "" || badPort(u) || !slices.Contains([]string{"tcp", "mqtt", "ssl", "tls", "mqtts"}, u.Scheme) {
			ps.add(fmt.Sprintf("uplink.brokers[%d]", i), "must be a broker URL like tcp://host:1883 or ssl://host:8883 (port 1-65535), got %q", u.Redacted())
		}
	}
	p := c.Uplink.TopicPrefix
	if strings.ContainsAny(p, "+#") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
		ps.add("uplink.topic_prefix", "must not contain + or #, nor start, end or repeat '/', got %q", p)
	}
}

func validateLog(c *Config, ps *problems) {
	ps.oneOf("log.level", c.Log.Level, []string{"debug", "info", "warn", "error"})
	ps.oneOf("log.format", c.Log.Format, []string{"text", "json"})
}

// Problemf builds a problem for key; section validators use it.
func Problemf(key, format string, args ...any) Problem {
	return Problem{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// badPort reports whether u names a port that is not a TCP port (1-65535); no port is fine.
func badPort(u *url.URL) bool {
	p := u.Port()
	if p == "" {
		return false
	}
	n, err := strconv.Atoi(p)
	return err != nil || n < 1 || n > 65535
}
