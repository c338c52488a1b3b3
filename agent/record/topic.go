package record

import "time"

// Streams of the outbox, each also the last level of its topic: records of one stream are
// numbered by one sequence (seq) and arrive in that order.
const (
	StreamPassage = "passage" // a decided passage (Passage)
	StreamAudit   = "audit"   // one row per platform call (AuditRow)
	StreamAlert   = "alert"   // failed or abandoned re-checks (Alert)
	StreamEvent   = "event"   // devices, commands, the agent itself (Event)
	// StreamQueue carries the outbox's own queue_loss notices (queue.NoticeStream).
	StreamQueue = "queue"
)

// Topic kinds that are not outbox streams.
const (
	KindStatus  = "status" // the retained status (Status)
	KindCommand = "cmd"    // cmd/<name> and cmd/<name>/reply (Command, CommandReply)
)

// Unit names one unit on the broker: its topics are <Prefix>/<Venue>/<Device>/<kind>.
type Unit struct {
	Prefix string // uplink.topic_prefix
	Venue  string // device.venue
	Device string // device.id
}

// Topic returns the topic of a record kind for this unit: <prefix>/<venue>/<device>/<kind>.
func (u Unit) Topic(kind string) string {
	return u.Prefix + "/" + u.Venue + "/" + u.Device + "/" + kind
}

// TSLayout is how every record stamps its times: RFC 3339 in UTC with milliseconds.
const TSLayout = "2006-01-02T15:04:05.000Z07:00"

// TS formats t as a record time (TSLayout, UTC).
func TS(t time.Time) string { return t.UTC().Format(TSLayout) }
