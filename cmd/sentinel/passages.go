package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/queue"
)

func init() {
	register("passages", "the last passages in the outbox, masked (read-only; safe while the daemon runs)", cmdPassages)
}

// maxLast bounds --last: the outbox is read once, keeping at most this many.
const maxLast = 10000

func cmdPassages(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("passages", "passages --config FILE [--last N] [--json]", stdout, stderr)
	path := fs.String("config", "", "config `FILE` of the unit")
	last := fs.Int("last", 20, fmt.Sprintf("how many of the last passages, `N` from 1 to %d", maxLast))
	asJSON := fs.Bool("json", false, "print the records as stored (JSON array, oldest first), each with delivered")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sentinel passages --config FILE [--last N] [--json]\n\n"+
			"The last N passage records of the outbox, oldest first, as they are stored and sent:\n"+
			"ID numbers and names are masked in every record. The outbox is opened read-only; the\n"+
			"command may run while the daemon runs.\n\n")
		fs.PrintDefaults()
	}
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	if *last < 1 || *last > maxLast {
		fmt.Fprintf(stderr, "sentinel passages: --last must be between 1 and %d, got %d\n", maxLast, *last)
		return exitUsage
	}
	cfg, code := loadConfig(fs, *path, stderr)
	if cfg == nil {
		return code
	}
	r, err := queue.OpenReader(cfg.Queue.Path)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel passages: queue.path: %v\n", err)
		return exitFailure
	}
	defer r.Close()
	ring := make([]queue.Entry, 0, *last)
	next := 0
	err = r.Entries(context.Background(), func(e queue.Entry) error {
		if e.Stream != record.StreamPassage {
			return nil
		}
		if len(ring) < *last {
			ring = append(ring, e)
		} else {
			ring[next] = e
			next = (next + 1) % *last
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(stderr, "sentinel passages: %v\n", err)
		return exitFailure
	}
	entries := append(append([]queue.Entry(nil), ring[next:]...), ring[:next]...)
	if *asJSON {
		return printPassagesJSON(stdout, stderr, entries)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTS\tCREDENTIAL\tSUBJECT\tVERDICT\tREASON\tMODE\tGATE\tDELIVERED")
	for _, e := range entries {
		var p record.Passage
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			fmt.Fprintf(tw, "%d\t-\t-\t-\t-\t(unreadable record %s)\t-\t-\t-\n", e.Seq, e.ID)
			continue
		}
		subject := p.Subject.ID
		if p.Subject.Name != "" {
			subject += " " + p.Subject.Name
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Seq, p.TS, p.Credential, or(subject, "-"), p.Verdict, p.Reason, p.Mode, p.Gate, delivered(e))
	}
	tw.Flush()
	if len(entries) == 0 {
		fmt.Fprintf(stderr, "sentinel passages: no passage in %s yet\n", cfg.Queue.Path)
	}
	return exitOK
}

func delivered(e queue.Entry) string {
	if e.DeliveredAt.IsZero() {
		return "pending"
	}
	return "yes"
}

// printPassagesJSON prints each record as stored (every field kept), with delivered.
func printPassagesJSON(stdout, stderr io.Writer, entries []queue.Entry) int {
	out := make([]map[string]json.RawMessage, 0, len(entries))
	for _, e := range entries {
		m := map[string]json.RawMessage{}
		if err := json.Unmarshal(e.Payload, &m); err != nil {
			fmt.Fprintf(stderr, "sentinel passages: record %s is not JSON: skipped\n", e.ID)
			continue
		}
		m["delivered"] = json.RawMessage(fmt.Sprint(!e.DeliveredAt.IsZero()))
		out = append(out, m)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(stderr, "sentinel passages: %v\n", err)
		return exitFailure
	}
	return exitOK
}
