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

// SelftestState is the last selftest's outcome.
type SelftestState struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	At     string `json:"at"`
}

// Status is the retained message on <prefix>/<venue>/<device>/status (docs/operations.md).
type Status struct {
	Online         bool              `json:"online"`
	TS             string            `json:"ts"`        // when the unit wrote it (its own clock)
	LastSeen       string            `json:"last_seen"` // for a will: when the control connection came up
	Clock          string            `json:"clock"`     // synced | unsynced: how far ts can be trusted
	Device         string            `json:"device"`
	Venue          string            `json:"venue"`
	Unit           string            `json:"unit"`
	Location       string            `json:"location"`
	Brand          string            `json:"brand"`
	Style          string            `json:"style"`        // install.style_label
	DeviceStyle    string            `json:"device_style"` // device.style
	InstallStatus  string            `json:"install_status"`
	Docked         bool              `json:"docked"`
	Platform       string            `json:"platform"`
	LastPlatformOK string            `json:"last_platform_ok,omitempty"`
	Selftest       *SelftestState    `json:"selftest,omitempty"`
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
