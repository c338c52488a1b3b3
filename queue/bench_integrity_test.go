package queue

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Benchmarks of issue #11's integrity measures (docs/BENCHMARKS.md, "Queue integrity"):
//
//	go test -run - -bench 'AppendMark' -benchtime 3s -count 5 ./queue
//	go test -run - -bench 'OpenLarge' -benchtime 5x ./queue     (OPEN_N: records, default 1,000,000)

// BenchmarkAppendMark is the cost of the high-water mark per append, synchronous=FULL, real
// sealed passage records: without it, with it written after every commit and never
// fsynced, and as it runs (written after every commit, fsynced every MarkSync, 1 s).
func BenchmarkAppendMark(b *testing.B) {
	for _, appenders := range []int{1, 4, 64} {
		for _, m := range []struct {
			name string
			opts Options
		}{
			{"none", Options{noMark: true}},
			{"written", Options{noMarkSync: true}},
			{"default", Options{}},
		} {
			b.Run(fmt.Sprintf("appenders=%d/mark=%s", appenders, m.name), func(b *testing.B) {
				benchAppend(b, m.opts, appenders, passagePayload)
			})
		}
	}
}

// BenchmarkOpenLarge is the start-up cost with a large outbox (OPEN_N records, default
// 1,000,000 sealed passages, about 330 MB): Open and Close with the default check budget
// (quick_check for DefaultCheckBudget, then every page read, quick_check finished in the
// background: Close interrupts it), with a budget quick_check always fits, and without the
// check. The database is built once and kept in the temporary directory
// (sentinel-bench-open-N.db) for later runs.
func BenchmarkOpenLarge(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("OPEN_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	path := largeOutbox(b, n)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		budget time.Duration
	}{{"default", 0}, {"full", time.Hour}, {"nocheck", -1}} {
		b.Run(c.name, func(b *testing.B) {
			cpu := processCPU()
			for b.Loop() {
				o, err := Open(path, Options{CheckBudget: c.budget, Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				if err := o.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(fi.Size())/1e6, "db-MB")
			b.ReportMetric((processCPU()-cpu).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// largeOutbox returns the path of an outbox of n sealed passage records, closed, building
// it (once: under a temporary name, renamed when complete) if the temporary directory does
// not hold it yet.
func largeOutbox(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("sentinel-bench-open-%d-v%d.db", n, schemaVersion()))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp := path + ".building"
	for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm", markPathOf(tmp)} {
		_ = os.Remove(p)
	}
	o, err := Open(tmp, Options{Synchronous: "NORMAL", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	fill(b, o, n)
	if err := o.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(markPathOf(tmp), markPathOf(path)); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkMarkAdvance is the high-water mark's own cost per commit: raising one stream and
// writing its slot (one 4 KiB pwrite, no fsync), with the six streams the agent uses.
func BenchmarkMarkAdvance(b *testing.B) {
	seqs := map[string]int64{"passage": 1, "event": 1, "audit": 1, "alert": 1, "queue": 1, "status": 1}
	m, err := createMark(filepath.Join(b.TempDir(), "q.hwm"), 0, seqs)
	if err != nil {
		b.Fatal(err)
	}
	defer m.close()
	next := map[string]int64{}
	var seq int64 = 1
	for b.Loop() {
		seq++
		next["passage"] = seq
		if err := m.advance(next); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckLarge is the two start-up checks alone on the OPEN_N outbox, read-only:
// quick_check, and the page walk Open falls back to when quick_check runs out of budget.
func BenchmarkCheckLarge(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("OPEN_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	path := largeOutbox(b, n)
	db := sql.OpenDB(&connector{ro: readOnlyDSN(path)})
	defer db.Close()
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		check func() error
	}{
		{"quick_check", func() error { return quickCheck(ctx, db, path, time.Hour) }},
		{"walk", func() error { return walkTrees(ctx, db, path) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			cpu := processCPU()
			for b.Loop() {
				if err := c.check(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((processCPU()-cpu).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}
