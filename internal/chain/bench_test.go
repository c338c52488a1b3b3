package chain_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	. "github.com/sentinel-edge/sentinel/internal/chain"
	"github.com/sentinel-edge/sentinel/internal/chain/chaintest"
)

// Benchmarks (docs/BENCHMARKS.md, "Records chain"):
//
//	go test -run - -bench 'Link|Check|Verifier' -benchmem ./internal/chain
//
// The chain's cost in the queue's writer: queue/bench_chain_test.go.

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
