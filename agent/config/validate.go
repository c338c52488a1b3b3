package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
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

// Section hooks: a file that adds a config section registers its defaults and validation from
// init, so sections stay in their own files.
var (
	sectionDefaults   []func(c *Config, present func(key string) bool)
	sectionValidators []func(c *Config) []Problem
)

// registerSection adds a section's defaults and validation (either may be nil).
func registerSection(defaults func(c *Config, present func(key string) bool), validate func(c *Config) []Problem) {
	if defaults != nil {
		sectionDefaults = append(sectionDefaults, defaults)
	}
	if validate != nil {
		sectionValidators = append(sectionValidators, validate)
	}
}

// applyDefaults fills what the file left out; present says whether a key was written, so an
// explicit zero (nat_max_age: 0s) is kept.
func (c *Config) applyDefaults(present func(key string) bool) {
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
	for _, f := range sectionDefaults {
		f(c, present)
	}
}

// HasBarrier says whether the device style drives a barrier.
func (c *Config) HasBarrier() bool {
	return c.Device.Style == StyleGateAllInOne || c.Device.Style == StylePillar
}

// ident is what may stand in an MQTT topic level and a file name.
var ident = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func (c *Config) validate() []Problem {
	var ps []Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	checkIdent := func(key, v string) {
		switch {
		case v == "":
			add(key, "is required")
		case !ident.MatchString(v):
			add(key, "must be 1-64 letters, digits, '.', '_' or '-' (it is used in MQTT topics), got %q", v)
		}
	}
	oneOf := func(key, v string, allowed []string) {
		if !slices.Contains(allowed, v) {
			add(key, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
		}
	}

	checkIdent("device.id", c.Device.ID)
	checkIdent("device.venue", c.Device.Venue)
	if c.Device.Style == "" {
		add("device.style", "is required (one of %s)", strings.Join(Styles, ", "))
	} else {
		oneOf("device.style", c.Device.Style, Styles)
	}

	if q := c.Scanners.QR; q == nil {
		add("scanners", "at least one scanner must be configured (scanners.qr)")
	} else {
		oneOf("scanners.qr.driver", q.Driver, []string{"serial", "evdev"})
		if q.Driver == "serial" && q.Port == "" {
			add("scanners.qr.port", "is required for driver serial (e.g. /dev/ttyS1)")
		}
		if q.Baud < 0 || q.Baud > 4_000_000 {
			add("scanners.qr.baud", "must be between 1 and 4000000, got %d", q.Baud)
		}
		if q.MaxLength < minQRMaxLength || q.MaxLength > maxQRMaxLength {
			add("scanners.qr.max_length", "must be between %d and %d, got %d", minQRMaxLength, maxQRMaxLength, q.MaxLength)
		}
	}

	if c.Platform.URL == "" {
		add("platform.url", "is required (e.g. http://127.0.0.1:8700)")
	} else if u, err := url.Parse(c.Platform.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("platform.url", "must be an http:// or https:// URL with a host, got %q", c.Platform.URL)
	}
	if c.Platform.Timeout < 0 || c.Platform.Timeout > maxPlatformTimeout {
		add("platform.timeout", "must be > 0 and at most %s, got %s", maxPlatformTimeout, c.Platform.Timeout)
	}

	if len(c.Policy.HealthCodes) == 0 {
		add("policy.health_codes", "must allow at least one colour (%s)", strings.Join(HealthCodes, ", "))
	}
	for i, hc := range c.Policy.HealthCodes {
		oneOf(fmt.Sprintf("policy.health_codes[%d]", i), hc, HealthCodes)
	}
	if c.Policy.NATMaxAge < 0 {
		add("policy.nat_max_age", "must be >= 0 (0 disables the check), got %s", c.Policy.NATMaxAge)
	}

	switch {
	case c.Barrier.Driver == "":
		add("barrier.driver", "is required for style %s (gpio, or fake for simulation)", c.Device.Style)
	case !slices.Contains([]string{"gpio", "fake", "none"}, c.Barrier.Driver):
		oneOf("barrier.driver", c.Barrier.Driver, []string{"gpio", "fake", "none"})
	case c.HasBarrier() && c.Barrier.Driver == "none":
		add("barrier.driver", "style %s drives a barrier: set gpio (or fake for simulation)", c.Device.Style)
	case !c.HasBarrier() && slices.Contains(Styles, c.Device.Style) && c.Barrier.Driver != "none":
		add("barrier.driver", "style %s has no barrier: set none, got %q", c.Device.Style, c.Barrier.Driver)
	}
	if c.Barrier.Driver == "gpio" && c.Barrier.Pin == "" {
		add("barrier.pin", "is required for driver gpio (e.g. GPIO17)")
	}
	if c.Barrier.Pulse <= 0 || c.Barrier.Pulse > MaxPulse {
		add("barrier.pulse", "must be > 0 and at most %s, got %s", MaxPulse, c.Barrier.Pulse)
	}

	if c.Queue.Path == "" {
		add("queue.path", "is required")
	}
	oneOf("queue.synchronous", c.Queue.Synchronous, []string{"FULL", "NORMAL"})

	if len(c.Uplink.Brokers) == 0 {
		add("uplink.brokers", "needs at least one broker URL (e.g. tcp://127.0.0.1:1883)")
	}
	for i, b := range c.Uplink.Brokers {
		key := fmt.Sprintf("uplink.brokers[%d]", i)
		u, err := url.Parse(b)
		if err != nil || u.Host == "" || u.Port() == "" || !slices.Contains([]string{"tcp", "mqtt", "ssl", "tls", "mqtts"}, u.Scheme) {
			add(key, "must be a broker URL like tcp://host:1883 or ssl://host:8883, got %q", b)
		}
	}
	p := c.Uplink.TopicPrefix
	if strings.ContainsAny(p, "+#") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
		add("uplink.topic_prefix", "must not contain + or #, nor start, end or repeat '/', got %q", p)
	}

	oneOf("log.level", c.Log.Level, []string{"debug", "info", "warn", "error"})
	oneOf("log.format", c.Log.Format, []string{"text", "json"})
	for _, f := range sectionValidators {
		ps = append(ps, f(c)...)
	}
	return ps
}

// Problemf builds a problem for key; section validators use it.
func Problemf(key, format string, args ...any) Problem {
	return Problem{Key: key, Msg: fmt.Sprintf(format, args...)}
}
