package chain_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	. "github.com/sentinel-edge/sentinel/internal/chain"
	"github.com/sentinel-edge/sentinel/internal/chain/chaintest"
	"github.com/sentinel-edge/sentinel/queue"
)

// Benchmarks (docs/BENCHMARKS.md, "Records chain"):
//
//	go test -run - -bench 'Link|Check|Verifier' -benchmem ./internal/chain
//	go test -run - -bench 'AppendChained' -benchtime 3s -count 3 ./internal/chain
//	go test -run - -bench 'FootprintChained' -benchtime 1x ./internal/chain

// The records of the queue's benchmarks: a sealed passage (privacy.platform_key_file set),
// a masked-only one, an audit row.
func sealedPassage(seq int64, id string) ([]byte, error) {
	sealed := make([]byte, len(`{"i":"350582199001011237","n":"张三丰"}`)+48)
	hash, rid := make([]byte, 16), make([]byte, 6)
	_, _ = rand.Read(sealed)
	_, _ = rand.Read(hash)
	_, _ = rand.Read(rid)
	ts := time.Unix(1795000000+seq, 123e6).UTC()
	return fmt.Appendf(nil, `{"id":%q,"seq":%d,"ts":"%s","device":"gate-01","venue":"350582-0001","credential":"qr",`+
		`"subject":{"id":"3505**********1231","name":"张*","sealed":"%s","hash":"%s"},"verdict":"pass","reason":"ok",`+
		`"mode":"online","gate":"opened","policy":"sha256:f6849c7b9a81e61a","health_code":"green",`+
		`"nat_sampled_at":"%s","platform_request_id":"p-%s","decision_ms":%d,"clock":"synced"}`,
		id, seq, ts.Format("2006-01-02T15:04:05.000Z07:00"), base64.StdEncoding.EncodeToString(sealed), hex.EncodeToString(hash),
		ts.Add(-6*time.Hour).Format(time.RFC3339), hex.EncodeToString(rid), seq%40), nil
}

func maskedPassage(seq int64, id string) ([]byte, error) {
	ts := time.Unix(1795000000+seq, 123e6).UTC()
	return fmt.Appendf(nil, `{"id":%q,"seq":%d,"ts":"%s","device":"gate-01","venue":"350582-0001","credential":"qr",`+
		`"subject":{"id":"3505**********1231","name":"张*"},"verdict":"pass","reason":"ok",`+
		`"mode":"online","gate":"opened","policy":"sha256:f6849c7b9a81e61a","health_code":"green",`+
		`"nat_sampled_at":"%s","platform_request_id":"p-8a1f3c","decision_ms":%d,"clock":"synced"}`,
		id, seq, ts.Format("2006-01-02T15:04:05.000Z07:00"), ts.Add(-6*time.Hour).Format(time.RFC3339), seq%40), nil
}

func auditRow(seq int64, id string) ([]byte, error) {
	ts := time.Unix(1795000000+seq, 123e6).UTC()
	return fmt.Appendf(nil, `{"id":%q,"seq":%d,"ts":"%s","device":"gate-01","venue":"350582-0001","interface":"qr","passage":"0b5d1f3e-8c1a-4f7e-9a61-3c2d5e7f9a10",`+
		`"purpose":"passage","attempt":1,"latency_ms":12.5,"http_status":200,"platform_request_id":"p-8a1f3c","signature":"accepted","result":"ok","source":"live"}`,
		id, seq, ts.Format("2006-01-02T15:04:05.000Z07:00")), nil
}

// cpuTime returns the CPU time used so far by the calling thread (self false) or by the
// whole process (self true). On a shared, loaded machine it is a steadier measure of a cost
// than the wall time a benchmark reports.
func cpuTime(process bool) time.Duration {
	who := unix.RUSAGE_THREAD
	if process {
		who = unix.RUSAGE_SELF
	}
	var ru unix.Rusage
	if unix.Getrusage(who, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loopCPU runs f b.N times on one locked thread and reports its CPU time per call.
func loopCPU(b *testing.B, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ResetTimer()
	t0 := cpuTime(false)
	for range b.N {
		f()
	}
	b.ReportMetric(float64(cpuTime(false)-t0)/float64(b.N), "cpu-ns/op")
}

var payloads = []struct {
	name  string
	build func(int64, string) ([]byte, error)
}{{"passage-sealed", sealedPassage}, {"passage-masked", maskedPassage}, {"audit", auditRow}}

// BenchmarkLink: the cost per record of chaining, as the writer pays it: Prepare (the
// canonical form; may run on any goroutine) and Link (one hash; in seq order).
func BenchmarkLink(b *testing.B) {
	prev := make([]byte, HashSize)
	for _, pl := range payloads {
		p, _ := pl.build(42, "0b5d1f3e-8c1a-4f7e-9a61-3c2d5e7f9a10")
		for _, alg := range []Alg{SHA256, SM3} {
			b.Run(pl.name+"/"+alg.String()+"/prepare+link", func(b *testing.B) {
				b.SetBytes(int64(len(p)))
				loopCPU(b, func() {
					if _, _, err := Link(alg, prev, p); err != nil {
						b.Fatal(err)
					}
				})
			})
			b.Run(pl.name+"/"+alg.String()+"/link", func(b *testing.B) {
				pr, _ := Prepare(p)
				loopCPU(b, func() { _, _, _ = pr.Link(alg, prev) })
			})
		}
	}
}

// BenchmarkCheck: the verifier's cost per record (canonical form and hash).
func BenchmarkCheck(b *testing.B) {
	for _, pl := range payloads {
		p, _ := pl.build(42, "0b5d1f3e-8c1a-4f7e-9a61-3c2d5e7f9a10")
		c, _, _ := Link(SHA256, make([]byte, HashSize), p)
		b.Run(pl.name, func(b *testing.B) {
			b.SetBytes(int64(len(c)))
			loopCPU(b, func() {
				if _, err := Check(c); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkVerifier: a whole verification (Add every message, then Report) of 100,000
// sealed passages and 50,000 audit rows with a status every 1,000 records; records/s.
func BenchmarkVerifier(b *testing.B) {
	s := chaintest.New(chaintest.ExampleKey())
	var msgs []chaintest.Msg
	var prev []byte
	for seq := int64(1); seq <= 100_000; seq++ {
		p, _ := sealedPassage(seq, fmt.Sprintf("00000000-0000-4000-8000-%012d", seq))
		c, h, _ := s.Unit.Link("passage", prev, p)
		prev = h
		msgs = append(msgs, chaintest.Msg{Topic: s.Topic("passage"), Payload: c})
		if seq%2 == 0 {
			msgs = append(msgs, s.Record("audit"))
		}
		if seq%1000 == 0 {
			s.Seq["passage"], s.Prev["passage"] = seq, prev
			msgs = append(msgs, s.Status(false))
		}
	}
	t0 := cpuTime(true)
	for b.Loop() {
		v := NewVerifier(VerifyOptions{})
		for _, m := range msgs {
			v.Add(m.Topic, m.Payload)
		}
		if r := v.Report(); !r.OK || r.Records != 150_000 {
			b.Fatalf("%+v", r)
		}
	}
	b.ReportMetric(float64(150_000*b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(150_000*b.N)/(cpuTime(true)-t0).Seconds(), "records/cpu-s")
}

// chainedBuild wraps build so that the payload stored is the chained record: what the
// writer will do, here inside the build func (called on the writer, in seq order; the one
// stream of the benchmark never has a failed append, so prev is the last record's hash).
func chainedBuild(u *Unit, build func(int64, string) ([]byte, error)) func(int64, string) ([]byte, error) {
	var prev []byte
	return func(seq int64, id string) ([]byte, error) {
		p, err := build(seq, id)
		if err != nil {
			return nil, err
		}
		c, h, err := u.Link("passage", prev, p)
		prev = h
		return c, err
	}
}

// BenchmarkAppendChained: the queue's append rate (synchronous=FULL, sealed passages) with
// and without the chain, 1, 4 and 64 appenders.
func BenchmarkAppendChained(b *testing.B) {
	u := &Unit{Venue: "350582-0001", Device: "gate-01", Alg: SHA256, Key: chaintest.ExampleKey()}
	for _, appenders := range []int{1, 4, 64} {
		for _, mode := range []string{"plain", "sha256", "sm3"} {
			b.Run(fmt.Sprintf("appenders=%d/%s", appenders, mode), func(b *testing.B) {
				build := sealedPassage
				if mode != "plain" {
					uu := *u
					uu.Alg, _ = ParseAlg(mode)
					build = chainedBuild(&uu, sealedPassage)
				}
				o, err := queue.Open(filepath.Join(b.TempDir(), "q.db"), queue.Options{Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				defer o.Close()
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				t0 := cpuTime(true)
				for range appenders {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							if _, err := o.Append(context.Background(), "passage", "sentinel/v1/350582-0001/gate-01/passage", build); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64(cpuTime(true)-t0)/float64(b.N)/1000, "cpu-µs/row")
			})
		}
	}
}

// BenchmarkFootprintChained: what the chain adds to the stored size of a record (the
// queue's accounted bytes, 100,000 sealed passages; FOOTPRINT_N changes the count).
func BenchmarkFootprintChained(b *testing.B) {
	n := 100_000
	if v := os.Getenv("FOOTPRINT_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	u := &Unit{Venue: "350582-0001", Device: "gate-01", Alg: SHA256, Key: chaintest.ExampleKey()}
	// The forms compared: as built (no chain); only reordered canonically (what the order
	// alone costs the compression); as built with prev and hash appended (what the two hashes
	// alone cost); as chained (canonical, prev and hash).
	forms := map[string]func(func(int64, string) ([]byte, error)) func(int64, string) ([]byte, error){
		"built": func(f func(int64, string) ([]byte, error)) func(int64, string) ([]byte, error) { return f },
		"canonical-only": func(f func(int64, string) ([]byte, error)) func(int64, string) ([]byte, error) {
			return func(seq int64, id string) ([]byte, error) {
				p, err := f(seq, id)
				if err != nil {
					return nil, err
				}
				return Canonical(nil, p)
			}
		},
		"built+hashes": func(f func(int64, string) ([]byte, error)) func(int64, string) ([]byte, error) {
			return func(seq int64, id string) ([]byte, error) {
				p, err := f(seq, id)
				if err != nil {
					return nil, err
				}
				h := make([]byte, 64)
				_, _ = rand.Read(h)
				return fmt.Appendf(p[:len(p)-1:len(p)-1], `,"prev":"%x","hash":"%x"}`, h[:32], h[32:]), nil
			}
		},
		"chained": func(f func(int64, string) ([]byte, error)) func(int64, string) ([]byte, error) {
			return chainedBuild(u, f)
		},
	}
	for _, pl := range payloads[:2] {
		for _, form := range []string{"built", "canonical-only", "built+hashes", "chained"} {
			b.Run(fmt.Sprintf("%s/%s", pl.name, form), func(b *testing.B) {
				for b.Loop() {
					o, err := queue.Open(filepath.Join(b.TempDir(), "q.db"), queue.Options{Synchronous: "NORMAL", Logger: slog.New(slog.DiscardHandler)})
					if err != nil {
						b.Fatal(err)
					}
					build := forms[form](pl.build)
					var wg sync.WaitGroup
					for w := range 16 {
						wg.Go(func() {
							for range n/16 + map[bool]int{true: n % 16}[w == 0] {
								if _, err := o.Append(context.Background(), "passage", "sentinel/v1/350582-0001/gate-01/passage", build); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					wg.Wait()
					st, err := o.Stats(context.Background())
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(st.Bytes)/float64(st.Records), "accounted-bytes/record")
					o.Close()
				}
			})
		}
	}
}

// BenchmarkAppendPaired: plain and chained appends alternated in rounds on fresh outboxes
// (64 appenders, sealed passages, synchronous=NORMAL so that the CPU, not fsync, bounds
// them), so that a shared machine's load falls on both alike; process CPU per row of each
// and their ratio.
func BenchmarkAppendPaired(b *testing.B) {
	u := &Unit{Venue: "350582-0001", Device: "gate-01", Alg: SHA256, Key: chaintest.ExampleKey()}
	const rows, rounds = 20_000, 6
	run := func(build func(int64, string) ([]byte, error)) time.Duration {
		o, err := queue.Open(filepath.Join(b.TempDir(), "q.db"), queue.Options{Synchronous: "NORMAL", Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		defer o.Close()
		var next atomic.Int64
		var wg sync.WaitGroup
		t0 := cpuTime(true)
		for range 64 {
			wg.Go(func() {
				for next.Add(1) <= rows {
					if _, err := o.Append(context.Background(), "passage", "sentinel/v1/350582-0001/gate-01/passage", build); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return cpuTime(true) - t0
	}
	for b.Loop() {
		var plain, chained time.Duration
		for range rounds {
			plain += run(sealedPassage)
			chained += run(chainedBuild(u, sealedPassage))
		}
		b.ReportMetric(float64(plain.Microseconds())/rows/rounds, "plain-cpu-µs/row")
		b.ReportMetric(float64(chained.Microseconds())/rows/rounds, "chained-cpu-µs/row")
		b.ReportMetric(float64(chained)/float64(plain), "ratio")
	}
}
