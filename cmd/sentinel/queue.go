package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/sentinel-edge/sentinel/queue"
)

func init() {
	register("queue", "inspect the outbox: queue stats, queue ids (safe while the daemon runs); queue salvage", cmdQueue)
}

const queueUsage = `Usage: sentinel queue stats --config FILE [--json]   pending, delivered, dropped, ages, bytes
       sentinel queue ids --config FILE              every retained record's id, one per line
       sentinel queue salvage --config FILE --out NEW.db
                                                     copy every readable record of a damaged
                                                     queue database into a new one

stats and ids open the queue database read-only and may run while the daemon runs. salvage
reads it read-only and writes NEW.db, which must not exist.
`

func cmdQueue(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, queueUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, queueUsage)
		return exitOK
	case "stats":
		return cmdQueueStats(args[1:], stdout, stderr)
	case "ids":
		return cmdQueueIDs(args[1:], stdout, stderr)
	case "salvage":
		return cmdQueueSalvage(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "sentinel queue: unknown subcommand %q\n\n%s", args[0], queueUsage)
	return exitUsage
}

// openQueueReader loads the config and opens its queue read-only, after the check the
// agent's start runs (quick_check): a database `run` refuses as damaged is refused here too
// (exit 1, the message naming salvage) rather than read as if it were sound.
func openQueueReader(name, synopsis string, args []string, stdout, stderr io.Writer, extra func(*flag.FlagSet)) (*queue.Reader, int) {
	fs := newFlags(name, synopsis, stdout, stderr)
	path := fs.String("config", "", "config `FILE` of the unit")
	if extra != nil {
		extra(fs)
	}
	if code := parse(fs, args, stdout); code >= 0 {
		return nil, code
	}
	cfg, code := loadConfig(fs, *path, stderr)
	if cfg == nil {
		return nil, code
	}
	r, err := queue.OpenReader(cfg.Queue.Path)
	if err == nil {
		if err = r.QuickCheck(context.Background()); err != nil {
			_ = r.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "sentinel %s: queue.path: %v\n", name, err)
		return nil, exitFailure
	}
	return r, -1
}

func cmdQueueStats(args []string, stdout, stderr io.Writer) int {
	var asJSON *bool
	r, code := openQueueReader("queue stats", "queue stats --config FILE [--json]", args, stdout, stderr, func(fs *flag.FlagSet) {
		asJSON = fs.Bool("json", false, "print JSON (keys pending, delivered, dropped, ...)")
	})
	if r == nil {
		return code
	}
	defer r.Close()
	st, err := r.Stats(context.Background())
	if err != nil {
		fmt.Fprintf(stderr, "sentinel queue stats: %v\n", err)
		return exitFailure
	}
	if *asJSON {
		b, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "sentinel queue stats: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return exitOK
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	fmt.Fprintf(w, "pending          %d\n", st.Pending)
	fmt.Fprintf(w, "delivered        %d (retained)\n", st.Delivered)
	fmt.Fprintf(w, "dropped          %d (oldest dropped %d, rejected when full %d, failed writes %d, quarantined %d, abandoned %d, missing %d)\n",
		st.Dropped, st.DroppedOldest, st.RejectedFull, st.FailedWrites, st.Quarantined, st.Abandoned, st.Missing)
	if age := st.OldestPendingAge(); age > 0 {
		fmt.Fprintf(w, "oldest pending   %s\n", age.Round(time.Second))
	} else {
		fmt.Fprintf(w, "oldest pending   -\n")
	}
	if st.LastDelivery.IsZero() {
		fmt.Fprintf(w, "last delivery    never\n")
	} else {
		fmt.Fprintf(w, "last delivery    %s (%s ago)\n", st.LastDelivery.UTC().Format(time.RFC3339), time.Since(st.LastDelivery).Round(time.Second))
	}
	fmt.Fprintf(w, "bytes on disk    %d (%d records, %d bytes accounted against queue.max_bytes)\n", st.BytesOnDisk, st.Records, st.Bytes)
	return exitOK
}

func cmdQueueIDs(args []string, stdout, stderr io.Writer) int {
	r, code := openQueueReader("queue ids", "queue ids --config FILE", args, stdout, stderr, nil)
	if r == nil {
		return code
	}
	defer r.Close()
	w := bufio.NewWriter(stdout)
	err := r.IDs(context.Background(), func(id string) error {
		_, err := fmt.Fprintln(w, id)
		return err
	})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		fmt.Fprintf(stderr, "sentinel queue ids: %v\n", err)
		return exitFailure
	}
	return exitOK
}
