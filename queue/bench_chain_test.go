package queue

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The record chain's cost in the writer (docs/BENCHMARKS.md, "Records chain in the writer"):
//
//	go test -run - -bench AppendChainPaired -benchtime 1x ./queue       (CHAIN_ROUNDS, CHAIN_SYNC)
//	go test -run - -bench FootprintChain -benchtime 1x ./queue          (FOOTPRINT_N)

// appendRun appends rows sealed passages with the given appenders to a fresh outbox and
// returns the wall time and the process CPU they took.
func appendRun(b *testing.B, opts Options, appenders, rows int) (wall, cpu time.Duration) {
	opts.Logger = slog.New(slog.DiscardHandler)
	o, err := Open(filepath.Join(b.TempDir(), "q.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	var next atomic.Int64
	var wg sync.WaitGroup
	t0, c0 := time.Now(), processCPU()
	for range appenders {
		wg.Go(func() {
			for next.Add(1) <= int64(rows) {
				if _, err := o.Append(context.Background(), "passage", chainPrefix+"passage", passagePayload); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(t0), processCPU() - c0
}

// BenchmarkAppendChainPaired: the append rate of sealed passages without and with the chain
// (Options.Chain, SHA-256), in runs on fresh outboxes that alternate plain and chained, so that
// a shared machine's load falls on both alike: for each synchronous mode and 1, 8 and 64
// appenders, the median rate of each and the ratio chained/plain of the rates (1 = no cost),
// and the process CPU per row.
func BenchmarkAppendChainPaired(b *testing.B) {
	rounds := 4
	if v := os.Getenv("CHAIN_ROUNDS"); v != "" {
		fmt.Sscan(v, &rounds)
	}
	modes := []string{"FULL", "NORMAL"}
	if v := os.Getenv("CHAIN_SYNC"); v != "" {
		modes = []string{v}
	}
	for _, syncMode := range modes {
		for _, appenders := range []int{1, 8, 64} {
			rows := 20_000
			if syncMode == "FULL" && appenders == 1 {
				rows = 2_000
			} else if syncMode == "FULL" && appenders == 8 {
				rows = 6_000
			}
			b.Run(fmt.Sprintf("%s/appenders=%d", syncMode, appenders), func(b *testing.B) {
				for b.Loop() {
					var rate [2][]float64
					var cpu [2]time.Duration
					for r := range rounds {
						for k := range 2 {
							k := (k + r) % 2 // alternate which goes first
							opts := Options{Synchronous: syncMode}
							if k == 1 {
								opts.Chain = testUnit()
							}
							wall, c := appendRun(b, opts, appenders, rows)
							rate[k] = append(rate[k], float64(rows)/wall.Seconds())
							cpu[k] += c
						}
					}
					med := func(v []float64) float64 { slices.Sort(v); return (v[(len(v)-1)/2] + v[len(v)/2]) / 2 }
					plain, chained := med(rate[0]), med(rate[1])
					b.ReportMetric(plain, "plain-rows/s")
					b.ReportMetric(chained, "chained-rows/s")
					b.ReportMetric(chained/plain, "rate-ratio")
					b.ReportMetric(float64(cpu[0].Microseconds())/float64(rows*rounds), "plain-cpu-µs/row")
					b.ReportMetric(float64(cpu[1].Microseconds())/float64(rows*rounds), "chained-cpu-µs/row")
					b.Logf("rates plain %.0f, chained %.0f rows/s (runs %v / %v)", plain, chained, rate[0], rate[1])
				}
			})
		}
	}
}

// BenchmarkFootprintChain: the stored size per sealed passage (and per masked one, with
// FOOTPRINT_SEALED=0) without and with the chain, after a checkpoint.
func BenchmarkFootprintChain(b *testing.B) {
	n := 100_000
	if v := os.Getenv("FOOTPRINT_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	for _, chained := range []bool{false, true} {
		b.Run(fmt.Sprintf("chained=%v", chained), func(b *testing.B) {
			for b.Loop() {
				opts := Options{Synchronous: "NORMAL", Logger: slog.New(slog.DiscardHandler)}
				if chained {
					opts.Chain = testUnit()
				}
				o, st, fi := filled(b, opts, n)
				var payload int64
				if err := o.db.QueryRow(`SELECT SUM(length(payload)) FROM outbox`).Scan(&payload); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(fi.Size())/float64(n), "disk-bytes/record")
				b.ReportMetric(float64(st.Bytes)/float64(n), "accounted-bytes/record")
				b.ReportMetric(float64(payload)/float64(n), "stored-payload-bytes/record")
			}
		})
	}
}

// BenchmarkAppendChain: one configuration at a time, for profiles (-cpuprofile): sealed
// passages, 1 and 64 appenders, synchronous=NORMAL (CHAIN_SYNC), without and with the chain.
func BenchmarkAppendChain(b *testing.B) {
	syncMode := "NORMAL"
	if v := os.Getenv("CHAIN_SYNC"); v != "" {
		syncMode = v
	}
	for _, appenders := range []int{1, 64} {
		for _, chained := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/appenders=%d/chained=%v", syncMode, appenders, chained), func(b *testing.B) {
				opts := Options{Synchronous: syncMode}
				if chained {
					opts.Chain = testUnit()
				}
				benchAppend(b, opts, appenders, passagePayload)
			})
		}
	}
}
