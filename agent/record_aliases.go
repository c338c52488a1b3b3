package agent

import "github.com/sentinel-edge/sentinel/agent/record"

// Temporary: the wire types moved to agent/record; these names keep the agent compiling
// while its parts move into their own packages, each of which uses record directly.
type (
	Record        = record.Passage
	Subject       = record.Subject
	AuditRow      = record.AuditRow
	Alert         = record.Alert
	Event         = record.Event
	Status        = record.Status
	SelftestState = record.SelftestState
	Command       = record.Command
	SignedCommand = record.SignedCommand
	CommandReply  = record.CommandReply
)

const (
	GateOpened    = record.GateOpened
	GateNotOpened = record.GateNotOpened
	GateNoBarrier = record.GateNoBarrier
	GateHeldOpen  = record.GateHeldOpen

	StreamPassage = record.StreamPassage
	StreamAudit   = record.StreamAudit
	StreamAlert   = record.StreamAlert
	StreamEvent   = record.StreamEvent
	StreamQueue   = record.StreamQueue

	PurposePassage = record.PurposePassage
	PurposeRecheck = record.PurposeRecheck
	PurposePing    = record.PurposePing

	AlertRecheckFailed    = record.AlertRecheckFailed
	AlertRecheckAbandoned = record.AlertRecheckAbandoned
	ReasonDaemonRestarted = record.ReasonDaemonRestarted

	EventExitButton       = record.EventExitButton
	EventDoorForcedOpen   = record.EventDoorForcedOpen
	EventDoorHeldOpen     = record.EventDoorHeldOpen
	EventDoorClosed       = record.EventDoorClosed
	EventFireAlarm        = record.EventFireAlarm
	EventFireAlarmCleared = record.EventFireAlarmCleared
	EventTamper           = record.EventTamper
	EventTamperCleared    = record.EventTamperCleared
	EventReaderOffline    = record.EventReaderOffline
	EventReaderOnline     = record.EventReaderOnline
	EventCommand          = record.EventCommand
	EventModeRestored     = record.EventModeRestored
	SourceCommand         = record.SourceCommand
	SourceAgent           = record.SourceAgent

	FireAlarmUnknown = record.FireAlarmUnknown
	FireAlarmNormal  = record.FireAlarmNormal
	FireAlarmActive  = record.FireAlarmActive
	PlatformUnknown  = record.PlatformUnknown
	PlatformOnline   = record.PlatformOnline
	PlatformOffline  = record.PlatformOffline

	CmdOpen     = record.CmdOpen
	CmdReload   = record.CmdReload
	CmdMode     = record.CmdMode
	CmdSelftest = record.CmdSelftest

	ResultOK          = record.ReplyOK
	ResultFailed      = record.ReplyFailed
	ResultUnsupported = record.ReplyUnsupported
	ResultRefused     = record.ReplyRefused

	ModeNormal     = record.GateModeNormal
	ModeAlwaysOpen = record.GateModeAlwaysOpen
	ModeLocked     = record.GateModeLocked

	tsLayout = record.TSLayout
)

var (
	EventTypes     = record.EventTypes
	GateModes      = record.GateModes
	SignCommand    = record.SignCommand
	KeyFingerprint = record.KeyFingerprint
)
