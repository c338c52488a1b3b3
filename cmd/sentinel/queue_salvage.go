package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/sentinel-edge/sentinel/queue"
)

const salvageSynopsis = "queue salvage --config FILE --out NEW.db"

// cmdQueueSalvage copies every readable record of a damaged queue database into a new one
// (queue.Salvage) and says what could not be read. Exit 0 when the new database was written,
// 1 when nothing could be salvaged or it could not be written, 2 for a usage error.
func cmdQueueSalvage(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("queue salvage", salvageSynopsis, stdout, stderr)
	path := fs.String("config", "", "config `FILE` of the unit (its queue.path is the damaged database)")
	out := fs.String("out", "", "the new database `FILE` to write; it must not exist")
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	if *out == "" {
		fmt.Fprintf(stderr, "%s: --out NEW.db is required\n", fs.Name())
		return exitUsage
	}
	cfg, code := loadConfig(fs, *path, stderr)
	if cfg == nil {
		return code
	}
	rep, err := queue.Salvage(context.Background(), cfg.Queue.Path, *out)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel queue salvage: queue.path: %v\n", err)
		return exitFailure
	}
	printSalvage(stdout, rep)
	return exitOK
}

func printSalvage(stdout io.Writer, rep queue.SalvageReport) {
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	fmt.Fprintf(w, "salvaged %s into %s (the damaged file was only read)\n", rep.From, rep.To)
	fmt.Fprintf(w, "copied        %d records (%d pending), %d quarantined rows\n", rep.Records, rep.Pending, rep.Quarantined)
	if rep.Undecodable > 0 {
		fmt.Fprintf(w, "undecodable   %d records copied as stored; the agent sets them aside (quarantine) when it reads them\n", rep.Undecodable)
	}
	ranges := func(rs []queue.KeyRange) string {
		s := make([]string, len(rs))
		for i, r := range rs {
			s[i] = r.String()
		}
		return strings.Join(s, ", ")
	}
	if len(rep.Unreadable) == 0 && len(rep.UnreadableQuarantine) == 0 {
		fmt.Fprintf(w, "unreadable    none\n")
	}
	if len(rep.Unreadable) > 0 {
		fmt.Fprintf(w, "unreadable    outbox rows n=%s\n", ranges(rep.Unreadable))
	}
	if len(rep.UnreadableQuarantine) > 0 {
		fmt.Fprintf(w, "unreadable    quarantine rows q=%s\n", ranges(rep.UnreadableQuarantine))
	}
	for _, g := range rep.Lost {
		fmt.Fprintf(w, "lost          %s seq %d-%d (%d records; recorded as missing: the agent's next start reports them in a queue_loss notice)\n",
			g.Stream, g.First, g.Last, g.Last-g.First+1)
	}
	var last []string
	for _, s := range slices.Sorted(maps.Keys(rep.Streams)) {
		last = append(last, fmt.Sprintf("%s %d", s, rep.Streams[s]))
	}
	fmt.Fprintf(w, "last seq      %s (the new database continues after these)\n", strings.Join(last, ", "))
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "warning       %s\n", warn)
	}
	fmt.Fprintf(w, "next: with the agent stopped, move the damaged file and its -wal and -shm files aside together (keep them for analysis),\n")
	fmt.Fprintf(w, "      move %s to queue.path (owned by the agent's user), leave queue.path's .hwm file where it is, and start the agent\n", rep.To)
}
