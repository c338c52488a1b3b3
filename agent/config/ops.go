package config

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Operations defaults (docs/screen.md, docs/operations.md, docs/metrics.md).
const (
	DefaultScreenListen    = "127.0.0.1:8080"
	DefaultMetricsListen   = "127.0.0.1:9464"
	DefaultVerdictHold     = 4 * time.Second
	DefaultStatusHeartbeat = 60 * time.Second
	// The docking rule (docs/operations.md, "Docked"): a verification passed within
	// DefaultDockedMaxAge, the platform answered within DefaultPlatformMaxSilence, and the
	// daemon verifies again every DefaultVerifyInterval.
	DefaultDockedMaxAge       = 24 * time.Hour
	DefaultPlatformMaxSilence = 10 * time.Minute
	DefaultVerifyInterval     = time.Hour
	minDockedMaxAge           = time.Minute
	maxDockedMaxAge           = 30 * 24 * time.Hour
	minVerifyInterval         = 10 * time.Second
	DefaultCommandMaxAge      = 5 * time.Minute
	DefaultInstallStatus      = InstallInstalling // installed must be said (install.status)
	InstallInstalled          = "installed"
	InstallInstalling         = "installing"
	ListenOff                 = "off"
	minStatusHeartbeat        = time.Second
	maxStatusHeartbeat        = time.Hour
	maxCommandMaxAge          = 24 * time.Hour
	maxVerdictHold            = time.Minute
	maxInstallText            = 200
	operatorKeyHelpFormat     = "base64 or hex of a 32-byte Ed25519 public key"
)

// Screen is the verdict screen: a page served to the unit's kiosk browser.
type Screen struct {
	// Listen is host:port, or "off". Loopback unless AllowRemote.
	Listen string `yaml:"listen"`
	// AllowRemote permits a non-loopback Listen address (an external display on the LAN).
	AllowRemote bool `yaml:"allow_remote"`
	// VerdictHold is how long a verdict stays on screen before the idle screen returns.
	VerdictHold time.Duration `yaml:"verdict_hold"`
}

// Metrics is the Prometheus endpoint.
type Metrics struct {
	Listen      string `yaml:"listen"` // host:port, or "off"
	AllowRemote bool   `yaml:"allow_remote"`
}

// Install holds the installation facts the city's statistics table asks for.
type Install struct {
	Unit       string `yaml:"unit"`        // the unit (organisation) the terminal serves
	Location   string `yaml:"location"`    // where it is installed
	Brand      string `yaml:"brand"`       // product brand
	StyleLabel string `yaml:"style_label"` // product style as the annex names it; default device.style
	Status     string `yaml:"status"`      // installed | installing
}

// Commands configures remote commands.
type Commands struct {
	// OperatorKeys are the Ed25519 public keys whose signatures are accepted (base64 or hex).
	// With none, every command is refused.
	OperatorKeys []string `yaml:"operator_keys"`
	// MaxAge is the longest validity a command may claim (expires_at - issued_at) and the
	// clock skew allowed on issued_at.
	MaxAge time.Duration `yaml:"max_age"`
}

// Status configures the retained status message and the docking rule.
type Status struct {
	Heartbeat time.Duration `yaml:"heartbeat"`
	// DockedMaxAge is how long a passed docking verification (sentinel docking-check, a
	// selftest, the daemon's own platform check) counts.
	DockedMaxAge time.Duration `yaml:"docked_max_age"`
	// PlatformMaxSilence is how long the unit stays docked without a successful answer
	// from the platform; at least platform.probe_interval.
	PlatformMaxSilence time.Duration `yaml:"platform_max_silence"`
	// VerifyInterval is how often the daemon checks the platform as the selftest does
	// (a ping and a signed request), the docking evidence of a running unit; less than
	// DockedMaxAge.
	VerifyInterval time.Duration `yaml:"verify_interval"`
}

// ParseOperatorKey decodes an Ed25519 public key written as base64 (std or URL) or hex.
func ParseOperatorKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	for _, dec := range []func(string) ([]byte, error){
		hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	} {
		if b, err := dec(s); err == nil && len(b) == ed25519.PublicKeySize {
			return ed25519.PublicKey(b), nil
		}
	}
	return nil, fmt.Errorf("not an Ed25519 public key (%s)", operatorKeyHelpFormat)
}

// IsLoopbackListen reports whether addr (host:port) binds only loopback addresses.
func IsLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func opsDefaults(c *Config, present func(string) bool) {
	if c.Screen.Listen == "" && !present("screen.listen") {
		c.Screen.Listen = DefaultScreenListen
	}
	if c.Screen.VerdictHold == 0 {
		c.Screen.VerdictHold = DefaultVerdictHold
	}
	if c.Metrics.Listen == "" && !present("metrics.listen") {
		c.Metrics.Listen = DefaultMetricsListen
	}
	if c.Install.Status == "" {
		c.Install.Status = DefaultInstallStatus
	}
	if c.Install.StyleLabel == "" {
		c.Install.StyleLabel = c.Device.Style
	}
	if c.Commands.MaxAge == 0 {
		c.Commands.MaxAge = DefaultCommandMaxAge
	}
	if c.Status.Heartbeat == 0 {
		c.Status.Heartbeat = DefaultStatusHeartbeat
	}
	// A written 0 stays 0, so that validation names it rather than a default replacing it.
	for _, d := range []struct {
		key string
		v   *time.Duration
		def time.Duration
	}{
		{"status.docked_max_age", &c.Status.DockedMaxAge, DefaultDockedMaxAge},
		{"status.platform_max_silence", &c.Status.PlatformMaxSilence, DefaultPlatformMaxSilence},
		{"status.verify_interval", &c.Status.VerifyInterval, DefaultVerifyInterval},
	} {
		if *d.v == 0 && !present(d.key) {
			*d.v = d.def
		}
	}
}

func opsValidate(c *Config) []Problem {
	var ps []Problem
	listen := func(key, v string, allowRemote bool) {
		if v == ListenOff {
			return
		}
		_, port, err := net.SplitHostPort(v)
		if err != nil || port == "" {
			ps = append(ps, Problemf(key, "must be host:port (e.g. 127.0.0.1:8080) or off, got %q", v))
			return
		}
		if !IsLoopbackListen(v) && !allowRemote {
			ps = append(ps, Problemf(key, "%q is not a loopback address; the agent listens on loopback only unless %s is true", v,
				strings.TrimSuffix(key, ".listen")+".allow_remote"))
		}
	}
	listen("screen.listen", c.Screen.Listen, c.Screen.AllowRemote)
	listen("metrics.listen", c.Metrics.Listen, c.Metrics.AllowRemote)
	if c.Screen.Listen != ListenOff && c.Screen.Listen == c.Metrics.Listen {
		ps = append(ps, Problemf("metrics.listen", "must differ from screen.listen, both are %q", c.Metrics.Listen))
	}
	if c.Screen.VerdictHold < 0 || c.Screen.VerdictHold > maxVerdictHold {
		ps = append(ps, Problemf("screen.verdict_hold", "must be > 0 and at most %s, got %s", maxVerdictHold, c.Screen.VerdictHold))
	}

	if !slices.Contains([]string{InstallInstalled, InstallInstalling}, c.Install.Status) {
		ps = append(ps, Problemf("install.status", "must be one of %s, %s, got %q", InstallInstalled, InstallInstalling, c.Install.Status))
	}
	for key, v := range map[string]string{"install.unit": c.Install.Unit, "install.location": c.Install.Location,
		"install.brand": c.Install.Brand, "install.style_label": c.Install.StyleLabel} {
		if len([]rune(v)) > maxInstallText {
			ps = append(ps, Problemf(key, "must be at most %d characters, got %d", maxInstallText, len([]rune(v))))
		}
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			ps = append(ps, Problemf(key, "must not contain control characters"))
		}
	}

	seen := map[string]int{}
	for i, k := range c.Commands.OperatorKeys {
		key := fmt.Sprintf("commands.operator_keys[%d]", i)
		pk, err := ParseOperatorKey(k)
		if err != nil {
			ps = append(ps, Problemf(key, "%v", err))
			continue
		}
		if j, dup := seen[string(pk)]; dup {
			ps = append(ps, Problemf(key, "is the same key as commands.operator_keys[%d]", j))
		}
		seen[string(pk)] = i
	}
	if c.Commands.MaxAge < 0 || c.Commands.MaxAge > maxCommandMaxAge {
		ps = append(ps, Problemf("commands.max_age", "must be > 0 and at most %s, got %s", maxCommandMaxAge, c.Commands.MaxAge))
	}
	if c.Status.Heartbeat < minStatusHeartbeat || c.Status.Heartbeat > maxStatusHeartbeat {
		ps = append(ps, Problemf("status.heartbeat", "must be between %s and %s, got %s", minStatusHeartbeat, maxStatusHeartbeat, c.Status.Heartbeat))
	}
	return append(ps, dockingValidate(c)...)
}

// dockingValidate checks the docking rule's keys against each other and the platform's
// probe interval.
func dockingValidate(c *Config) []Problem {
	var ps []Problem
	s := c.Status
	if s.DockedMaxAge < minDockedMaxAge || s.DockedMaxAge > maxDockedMaxAge {
		ps = append(ps, Problemf("status.docked_max_age", "must be between %s and %s, got %s", minDockedMaxAge, maxDockedMaxAge, s.DockedMaxAge))
	}
	if s.PlatformMaxSilence < c.Platform.ProbeInterval || s.PlatformMaxSilence > maxDockedMaxAge {
		ps = append(ps, Problemf("status.platform_max_silence", "must be at least platform.probe_interval (%s) and at most %s, got %s",
			c.Platform.ProbeInterval, maxDockedMaxAge, s.PlatformMaxSilence))
	}
	if s.VerifyInterval < minVerifyInterval || (s.DockedMaxAge > 0 && s.VerifyInterval >= s.DockedMaxAge) {
		ps = append(ps, Problemf("status.verify_interval", "must be at least %s and less than status.docked_max_age (%s), got %s",
			minVerifyInterval, s.DockedMaxAge, s.VerifyInterval))
	}
	return ps
}
