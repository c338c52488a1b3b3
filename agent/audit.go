package agent

import (
	"context"
	"encoding/json"
	"time"

	"github.com/sentinel-edge/sentinel/verify"
)

// The call audit (the city's 调用日志): every request made to the platform is one row, stored in
// the outbox on stream "audit" and published on <prefix>/<venue>/<device>/audit with the same
// guarantees as passage records. A row never holds the ID number, the name or the token.
const StreamAudit = "audit"

// Purposes of a platform call.
const (
	PurposePassage = "passage" // deciding a passage
	PurposeRecheck = "recheck" // re-verifying a passage that allow_and_flag admitted
	PurposePing    = "ping"    // a liveness check; serves no passage
)

// AuditRow is one request to the platform. Its fields are a contract (docs/docking-spec.md,
// "Call audit"): add fields, never rename them.
type AuditRow struct {
	ID                string  `json:"id"`
	Seq               int64   `json:"seq"`
	TS                string  `json:"ts"` // when the request was sent, RFC 3339 UTC with ms
	Device            string  `json:"device"`
	Venue             string  `json:"venue"`
	Interface         string  `json:"interface"`         // qr, idcard, face, ping
	Passage           string  `json:"passage,omitempty"` // the passage the call served
	Purpose           string  `json:"purpose"`           // passage, recheck, ping
	Attempt           int     `json:"attempt"`           // 1; 2 for the retry
	LatencyMS         float64 `json:"latency_ms"`
	HTTPStatus        int     `json:"http_status"` // 0 when no answer arrived
	PlatformRequestID string  `json:"platform_request_id,omitempty"`
	Signature         string  `json:"signature"` // none, accepted, rejected, unknown
	Result            string  `json:"result"`    // ok, not_found, bad_response, platform_error, signature_rejected, timeout, unreachable
	Source            string  `json:"source"`    // live, cache, offline, retried: what decided the passage
}

// auditTimeout bounds the storing of one audit row.
var auditTimeout = 5 * time.Second

// auditCalls stores one row per call. A row that cannot be stored is logged and counted, never
// silently dropped.
func (d *Daemon) auditCalls(ctx context.Context, passageID, purpose string, calls []verify.Call) {
	if d.Outbox == nil {
		return
	}
	topic := Topic(d.Cfg, StreamAudit)
	for _, c := range calls {
		row := AuditRow{
			TS:     c.Start.UTC().Format(tsLayout),
			Device: d.Cfg.Device.ID, Venue: d.Cfg.Device.Venue,
			Interface: c.Interface, Passage: passageID, Purpose: purpose, Attempt: c.Attempt,
			LatencyMS:  float64(c.Latency.Microseconds()) / 1000,
			HTTPStatus: c.Status, PlatformRequestID: c.RequestID,
			Signature: c.Signature, Result: c.Result, Source: c.Source,
		}
		if c.Start.IsZero() {
			row.TS = time.Now().UTC().Format(tsLayout)
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
		_, err := d.Outbox.AppendID(actx, StreamAudit, topic, "", func(seq int64, id string) ([]byte, error) {
			row.ID, row.Seq = id, seq
			return json.Marshal(row)
		})
		cancel()
		if err != nil {
			d.auditLost.Add(1)
			d.Log.Error("audit row NOT stored", "passage", passageID, "interface", c.Interface, "request_id", c.RequestID, "lost_total", d.auditLost.Load(), "err", err)
		}
	}
}

// auditPing is the client's OnPing hook.
func (d *Daemon) auditPing(c verify.Call) {
	d.auditCalls(context.Background(), "", PurposePing, []verify.Call{c})
}

// AuditLost is how many audit rows could not be stored since start (in memory). Unless the
// outbox was closed, each is also in the outbox's persisted loss counters (rejected_full,
// failed_writes, or abandoned when auditTimeout ended before the writer took the row), which
// `sentinel queue stats` and the queue_loss notice report.
func (d *Daemon) AuditLost() int64 { return d.auditLost.Load() }

func init() {
	RegisterPart(Part{Name: "audit", Order: 5, Setup: setupAudit})
}

// setupAudit audits every decision's calls and, under allow_and_flag, re-verifies flagged
// passages when the platform returns (reverify.go); at start it alerts the flagged passages a
// previous run left without a re-check.
func setupAudit(ctx context.Context, d *Daemon) (func(context.Context) error, error) {
	// Flagged passages a previous run left without a re-check: alerted, whatever the offline
	// policy is now (the scan goes on in the background).
	scanned := alertUnsettled(ctx, d)
	var rc *rechecker
	if d.Cfg.Platform.OfflinePolicy == verify.OfflineAllowAndFlag {
		rc = newRechecker(d)
	}
	d.Pipeline.Decided = func(ctx context.Context, cred verify.Credential, passageID string, dec verify.Decision) {
		d.auditCalls(ctx, passageID, PurposePassage, dec.Calls())
		if dec.Flagged && rc != nil {
			rc.add(cred, passageID, dec)
		}
	}
	return func(ctx context.Context) error {
		var err error
		if rc != nil {
			err = rc.run(ctx)
		} else {
			<-ctx.Done()
		}
		<-scanned // the outbox stays open until the scan ended
		return err
	}, nil
}
