package record

import "github.com/sentinel-edge/sentinel/internal/chain"

// Fire-alarm states in the status (Status.FireAlarm).
const (
	FireAlarmUnknown = "unknown" // no fire-alarm input reported yet
	FireAlarmNormal  = "normal"
	FireAlarmActive  = "alarm"
)

// Platform reachability in the status and on the screen (Status.Platform).
const (
	PlatformUnknown = "unknown" // no call yet
	PlatformOnline  = "online"  // the last call got an answer
	PlatformOffline = "offline" // the last call got none (timeout, refused)
)

// Reader states in the status (Status.Readers).
const (
	ReaderOnline  = "online"
	ReaderOffline = "offline"
)

// Tamper states in the status (Status.Tamper).
const (
	TamperUnknown = "unknown" // no tamper input configured
	TamperNormal  = "normal"
	TamperActive  = "alarm"
)

// Where a selftest ran (SelftestState.Source).
const (
	SelftestCLI      = "cli"      // sentinel selftest, the full commissioning test (the daemon stopped)
	SelftestCommand  = "command"  // the signed selftest command: the daemon's live selftest
	SelftestDocking  = "docking"  // sentinel docking-check, the city's docking verification
	SelftestPlatform = "platform" // the daemon's own platform check, at start and every status.verify_interval
)

// SelftestState is the outcome of one verification of the unit: a selftest, a docking
// check, or the daemon's platform check. Stored beside the queue (selftest.json,
// docking-check.json) and published in the status.
type SelftestState struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	At     string `json:"at"`
	// Failed names the checks that failed (the rows of the selftest table).
	Failed []string `json:"failed,omitempty"`
	// Source is where it ran: SelftestCLI, SelftestCommand, SelftestDocking or
	// SelftestPlatform.
	Source string `json:"source,omitempty"`
	// Version is the software version that ran it; Mapping the platform mapping's hash.
	Version string `json:"version,omitempty"`
	Mapping string `json:"mapping,omitempty"`
}

// DockingState is the evidence behind Status.Docked: the verification that counts (the
// newest that passed) and every reason the unit is not docked.
type DockingState struct {
	// Check is the Source of the verification that counts ("" when none passed); At and
	// Version are its own.
	Check   string `json:"check,omitempty"`
	At      string `json:"at,omitempty"`
	Version string `json:"version,omitempty"`
	// Why lists every reason the unit is not docked; empty when it is.
	Why []string `json:"why,omitempty"`
}

// Progress steps of an installation (Progress.Step), as the city's table counts them.
const (
	StepInstalling = 1 // mounted or being mounted; the install facts are not complete
	StepInstalled  = 2 // installed, the facts complete, not docked
	StepDocked     = 3 // installed and docked
	Steps          = 3
)

// Progress is where the unit is in its installation, derived from the facts: the install
// section, and the docking state.
type Progress struct {
	Step  int    `json:"step"`  // StepInstalling, StepInstalled or StepDocked
	Of    int    `json:"of"`    // Steps
	State string `json:"state"` // installing, installed or docked
	// Why lists what keeps the unit from the next step.
	Why []string `json:"why,omitempty"`
}

// LastPassage is the last passage decided, without personal data.
type LastPassage struct {
	TS      string `json:"ts"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
	Gate    string `json:"gate"`
	Mode    string `json:"mode"`
}

// Status is the retained message on <prefix>/<venue>/<device>/status (docs/operations.md).
type Status struct {
	Online         bool           `json:"online"`
	TS             string         `json:"ts"`        // when the unit wrote it (its own clock)
	LastSeen       string         `json:"last_seen"` // for a will: when the control connection came up
	Clock          string         `json:"clock"`     // synced | unsynced: how far ts can be trusted
	Device         string         `json:"device"`
	Venue          string         `json:"venue"`
	Unit           string         `json:"unit"`
	Location       string         `json:"location"`
	Brand          string         `json:"brand"`
	Style          string         `json:"style"`        // install.style_label
	DeviceStyle    string         `json:"device_style"` // device.style
	InstallStatus  string         `json:"install_status"`
	Docked         bool           `json:"docked"`
	Platform       string         `json:"platform"`
	LastPlatformOK string         `json:"last_platform_ok,omitempty"`
	Selftest       *SelftestState `json:"selftest,omitempty"`
	// PlatformSince is when Platform took its value (the unit's clock).
	PlatformSince string `json:"platform_since,omitempty"`
	// Docking is the evidence behind Docked; DockingCheck and PlatformCheck the last
	// sentinel docking-check and the daemon's last own platform check.
	Docking        *DockingState     `json:"docking,omitempty"`
	DockingCheck   *SelftestState    `json:"docking_check,omitempty"`
	PlatformCheck  *SelftestState    `json:"platform_check,omitempty"`
	Progress       *Progress         `json:"progress,omitempty"`
	LastPassage    *LastPassage      `json:"last_passage,omitempty"`
	Tamper         string            `json:"tamper,omitempty"` // unknown, normal or alarm
	Version        string            `json:"version"`
	QueuePending   int64             `json:"queue_pending"`
	QueueOldestAge float64           `json:"queue_oldest_age_s"`
	Uplink         bool              `json:"uplink"` // the record uplink is connected
	Readers        map[string]string `json:"readers"`
	FireAlarm      string            `json:"fire_alarm"`
	Mode           string            `json:"mode"`           // the gate mode
	Will           bool              `json:"will,omitempty"` // published by the broker: the unit vanished
	// Head is where each stream stands (seq and hash of its last stored record), HeadSig the
	// unit's signature of it with TS, ChainKey the unit's public key (docs/records.md).
	Head     chain.Head `json:"head,omitempty"`
	HeadSig  string     `json:"head_sig,omitempty"`
	ChainKey string     `json:"chain_key,omitempty"`
}
