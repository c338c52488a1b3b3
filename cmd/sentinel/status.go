package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sentinel-edge/sentinel/agent"
	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/ops"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/statefile"
	"github.com/sentinel-edge/sentinel/queue"
)

func init() {
	register("status", "what the unit is doing now (read-only; safe while the daemon runs)", cmdStatus)
}

// statusView is sentinel status --json.
type statusView struct {
	Daemon struct {
		Running bool   `json:"running"`
		PID     int    `json:"pid,omitempty"`
		Since   string `json:"since,omitempty"`
		Detail  string `json:"detail,omitempty"` // why it is taken not to run
	} `json:"daemon"`
	// Status is the daemon's last status (its status file), as it publishes it; null when it
	// never wrote one. StatusAge is how old it is, in seconds.
	Status      *record.Status `json:"status"`
	StatusAge   float64        `json:"status_age_s,omitempty"`
	StatusError string         `json:"status_error,omitempty"` // why the status file could not be read
	Stale       bool           `json:"stale,omitempty"`        // the daemon runs but has not written it for 3 heartbeats
	// TSAhead is how far the status's ts lies ahead of this machine's clock, in seconds
	// (0: it does not); StatusAge comes from the file's time, so it does not show that.
	TSAhead float64 `json:"ts_ahead_s,omitempty"`
	// RestartPending are the keys the last reload since the daemon started found changed
	// in the file but not in force until a restart (reload.json).
	RestartPending []string `json:"restart_pending,omitempty"`
	// Queue is the outbox's stats, read now (read-only).
	Queue      *queue.Stats `json:"queue"`
	QueueError string       `json:"queue_error,omitempty"`
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", "status --config FILE [--json]", stdout, stderr)
	path := fs.String("config", "", "config `FILE` of the unit")
	asJSON := fs.Bool("json", false, "print JSON (daemon, status, queue)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sentinel status --config FILE [--json]\n\n"+
			"What the unit is doing now: the daemon's last status (it writes status.json beside\n"+
			"queue.path on every change and heartbeat), and the outbox read now, read-only. It\n"+
			"touches no device and may run while the daemon runs.\n\n"+
			"Exit codes: 0 the daemon runs; 1 it does not (its last status is shown); 2 usage.\n\n")
		fs.PrintDefaults()
	}
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	cfg, code := loadConfig(fs, *path, stderr)
	if cfg == nil {
		return code
	}
	v := readStatusView(cfg)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	} else {
		printStatus(stdout, cfg, v)
	}
	if !v.Daemon.Running {
		fmt.Fprintf(stderr, "sentinel status: the daemon is not running: %s\n", v.Daemon.Detail)
		return exitFailure
	}
	return exitOK
}

// statusAheadSlack is how far a status's ts may lie ahead of this machine's clock before
// sentinel status flags it (the two clocks may differ a little).
const statusAheadSlack = 5 * time.Second

// pendingRestart is the restart list of the last reload (reload.json) if it happened since
// the daemon started (since, the pid file's): a reload before the start is in force.
func pendingRestart(cfg *config.Config, since string) []string {
	b, err := os.ReadFile(statefile.Path(cfg.Queue.Path, agent.ReloadFile))
	var out agent.ReloadOutcome
	if err != nil || json.Unmarshal(b, &out) != nil || !out.OK || len(out.Restart) == 0 {
		return nil
	}
	at, err1 := time.Parse(time.RFC3339Nano, out.At)
	start, err2 := time.Parse(time.RFC3339, since)
	if err1 != nil || err2 != nil || at.Before(start) {
		return nil
	}
	return out.Restart
}

func readStatusView(cfg *config.Config) statusView {
	var v statusView
	d := findDaemon(cfg)
	v.Daemon.Running, v.Daemon.PID, v.Daemon.Since, v.Daemon.Detail = d.running, d.pid, d.since, d.why
	path := statefile.Path(cfg.Queue.Path, ops.StatusFile)
	fi, err := os.Stat(path)
	switch {
	case os.IsNotExist(err):
	case err != nil:
		v.StatusError = err.Error()
	case !fi.Mode().IsRegular() || fi.Size() > 1<<20:
		v.StatusError = path + " is not a small regular file"
	default:
		var s record.Status
		b, err := os.ReadFile(path)
		if err != nil {
			v.StatusError = fmt.Sprintf("%s: %v (run as root or as the daemon's user)", path, err)
			break
		}
		if err := json.Unmarshal(b, &s); err != nil {
			v.StatusError = fmt.Sprintf("%s is damaged (not a JSON status: %v); the daemon rewrites it every second: wait and try again, "+
				"and if it stays damaged the daemon is not writing it (journalctl -u sentinel)", path, err)
			break
		}
		v.Status = &s
		v.StatusAge = time.Since(fi.ModTime()).Round(100 * time.Millisecond).Seconds()
		v.Stale = d.running && time.Since(fi.ModTime()) > 3*cfg.Status.Heartbeat
		if ts, err := time.Parse(time.RFC3339Nano, s.TS); err == nil && time.Until(ts) > statusAheadSlack {
			v.TSAhead = time.Until(ts).Round(time.Second).Seconds()
		}
	}
	if d.running {
		v.RestartPending = pendingRestart(cfg, d.since)
	}
	r, err := queue.OpenReader(cfg.Queue.Path)
	if err == nil {
		defer r.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var st queue.Stats
		if st, err = r.Stats(ctx); err == nil {
			v.Queue = &st
		}
	}
	if err != nil {
		v.QueueError = err.Error()
	}
	return v
}

// printStatus writes the status as a field engineer reads it.
func printStatus(w io.Writer, cfg *config.Config, v statusView) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	row("unit", "device %s, venue %s, style %s", cfg.Device.ID, cfg.Device.Venue, cfg.Device.Style)
	if v.Daemon.Running {
		row("daemon", "running (pid %d, up since %s)", v.Daemon.PID, v.Daemon.Since)
	} else {
		row("daemon", "NOT running: %s", v.Daemon.Detail)
	}
	s := v.Status
	switch {
	case v.StatusError != "":
		row("status", "cannot read: %s", v.StatusError)
	case s == nil:
		row("status", "none written yet (the daemon writes %s beside queue.path)", ops.StatusFile)
	default:
		label := "status"
		if !v.Daemon.Running {
			label = "last known"
		}
		note := ""
		if v.Stale {
			note = ": STALE, the daemon has not written it for 3 heartbeats (is it stuck? journalctl -u sentinel)"
		}
		if v.TSAhead > 0 {
			note += fmt.Sprintf(": its ts is %s AHEAD of this machine's clock (the unit's clock or this one is wrong; the age is the file's)",
				time.Duration(v.TSAhead)*time.Second)
		}
		row(label, "written %s (%.0fs ago)%s", s.TS, v.StatusAge, note)
		row("mode", "%s", s.Mode)
		row("platform", "%s since %s (last answer %s)", s.Platform, or(s.PlatformSince, "-"), or(s.LastPlatformOK, "never"))
		row("broker", "uplink %s; %s", connected(s.Uplink), strings.Join(cfg.Uplink.Brokers, ", "))
		row("readers", "%s", readers(s.Readers))
		row("fire alarm", "%s", s.FireAlarm)
		row("tamper", "%s", or(s.Tamper, record.TamperUnknown))
		if lp := s.LastPassage; lp != nil {
			row("last passage", "%s %s %s (%s, gate %s)", lp.TS, lp.Verdict, lp.Reason, lp.Mode, lp.Gate)
		} else {
			row("last passage", "none since start")
		}
		row("selftest", "%s", outcome(s.Selftest))
		row("docking-check", "%s", outcome(s.DockingCheck))
		row("platform check", "%s", outcome(s.PlatformCheck))
		docked := "no"
		if s.Docked {
			docked = "yes"
		}
		if d := s.Docking; d != nil && d.Check != "" {
			docked += fmt.Sprintf(" (evidence: %s at %s, version %s)", d.Check, d.At, d.Version)
		}
		row("docked", "%s", docked)
		if s.Docking != nil {
			for _, why := range s.Docking.Why {
				row("", "- %s", why)
			}
		}
		if p := s.Progress; p != nil {
			row("progress", "%d/%d %s", p.Step, p.Of, p.State)
		}
	}
	if len(v.RestartPending) > 0 {
		row("reload", "restart needed for: %s (changed in the file, NOT in force; systemctl restart sentinel)", strings.Join(v.RestartPending, ", "))
	}
	switch {
	case v.Queue != nil:
		age := "-"
		if a := v.Queue.OldestPendingAge(); a > 0 {
			age = a.Round(time.Second).String()
		}
		row("queue", "%d pending (oldest %s), %d delivered, %d dropped", v.Queue.Pending, age, v.Queue.Delivered, v.Queue.Dropped)
	default:
		row("queue", "cannot read: %s", v.QueueError)
	}
	tw.Flush()
}

func outcome(st *record.SelftestState) string {
	if st == nil {
		return "none"
	}
	s := "PASS"
	if !st.OK {
		s = "FAIL (" + strings.Join(st.Failed, ", ") + ")"
	}
	return fmt.Sprintf("%s at %s (%s, version %s)", s, st.At, st.Source, or(st.Version, "?"))
}

func readers(m map[string]string) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, n := range []string{"qr", "idcard", "camera"} {
		if st, ok := m[n]; ok {
			parts = append(parts, n+" "+st)
		}
	}
	for n, st := range m {
		if n != "qr" && n != "idcard" && n != "camera" {
			parts = append(parts, n+" "+st)
		}
	}
	return strings.Join(parts, ", ")
}

func connected(b bool) string {
	if b {
		return "connected"
	}
	return "NOT connected"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
