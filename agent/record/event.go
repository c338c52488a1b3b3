package record

// Event types: the value of an event's type field (docs/events.md lists them all).
const (
	// The lane's inputs and the credential readers (docs/drivers.md).
	EventExitButton       = "exit_button"
	EventDoorForcedOpen   = "door_forced_open"
	EventDoorHeldOpen     = "door_held_open"
	EventDoorClosed       = "door_closed" // after a forced- or held-open alarm
	EventFireAlarm        = "fire_alarm"
	EventFireAlarmCleared = "fire_alarm_cleared"
	EventTamper           = "tamper"
	EventTamperCleared    = "tamper_cleared"
	EventReaderOffline    = "reader_offline"
	EventReaderOnline     = "reader_online"
	// A streaming camera (camera.trigger detect or presence): no frame within camera.stall,
	// and frames again.
	EventCameraOffline = "camera_offline"
	EventCameraOnline  = "camera_online"
	// Operations (docs/operations.md).
	EventCommand      = "command"       // a remote command, done or refused
	EventModeRestored = "mode_restored" // the gate mode read back at start
)

// EventTypes lists every event type, in documentation order.
var EventTypes = []string{
	EventExitButton, EventDoorForcedOpen, EventDoorHeldOpen, EventDoorClosed,
	EventFireAlarm, EventFireAlarmCleared, EventTamper, EventTamperCleared,
	EventReaderOffline, EventReaderOnline, EventCameraOffline, EventCameraOnline,
	EventCommand, EventModeRestored,
}

// Event sources that are not a lane input or a reader.
const (
	SourceCommand = "command" // the remote command channel
	SourceAgent   = "agent"   // the agent itself (the gate mode restored at start)
	SourceCamera  = "camera"  // the camera, a reader like the others
)

// Event is the record on stream event: one type for devices, commands and the agent. It
// holds no personal data. The recorder fills id, seq, ts, device, venue and clock; the
// caller fills type, source and what the type uses.
type Event struct {
	ID     string `json:"id"`
	Seq    int64  `json:"seq"`
	TS     string `json:"ts"`
	Device string `json:"device"`
	Venue  string `json:"venue"`
	Clock  string `json:"clock"`
	Type   string `json:"type"`
	// Source says what the event comes from: an input (exit_button, door_sensor, fire_alarm,
	// tamper), a reader (qr, idcard, camera), command or agent.
	Source string `json:"source"`
	// Gate is what the barrier did for the event: opened, held_open, released, not_opened,
	// no_barrier.
	Gate string `json:"gate,omitempty"`
	// Detail says why (the driver's error for reader_offline, a fallback for mode_restored);
	// never personal data.
	Detail string `json:"detail,omitempty"`
	// Mode is the gate mode in force after a mode_restored event.
	Mode string `json:"mode,omitempty"`
	// Command is the command's reply, for a command event.
	Command *CommandReply `json:"command,omitempty"`
	// Lost counts events dropped before this one: the recorder was full or stopped, or the
	// database refused them.
	Lost int64 `json:"lost,omitempty"`
	// Suppressed counts command refusals not recorded since the last recorded one (the
	// refusal rate limit); every refusal is still counted in sentinel_commands_total.
	Suppressed int `json:"suppressed,omitempty"`
}
