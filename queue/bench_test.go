package queue

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/mqtttest"
)

// Heavy benchmarks: run them with -benchtime 1x (docs/BENCHMARKS.md):
//
//	go test -run - -bench 'Drain|Footprint' -benchtime 1x ./queue

// passagePayload builds a passage record as the agent stores it with sealing on: the masked
// subject, a sealed identity (random bytes of the real size: an 18-digit ID number and a
// 3-character name in JSON, plus 48 bytes of box overhead) and a keyed hash.
func passagePayload(seq int64, id string) ([]byte, error) {
	if !benchSealed {
		return maskedPayload(seq, id)
	}
	sealed := make([]byte, len(`{"i":"350582199001011237","n":"张三丰"}`)+48)
	hash := make([]byte, 16)
	rid := make([]byte, 6)
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

// benchSealed chooses sealed passage records (privacy.platform_key_file set) or masked only.
var benchSealed = os.Getenv("FOOTPRINT_SEALED") != "0"

// maskedPayload is a passage record without a platform key: masked fields only.
func maskedPayload(seq int64, id string) ([]byte, error) {
	rid := make([]byte, 6)
	_, _ = rand.Read(rid)
	ts := time.Unix(1795000000+seq, 123e6).UTC()
	return fmt.Appendf(nil, `{"id":%q,"seq":%d,"ts":"%s","device":"gate-01","venue":"350582-0001","credential":"qr",`+
		`"subject":{"id":"3505**********1231","name":"张*"},"verdict":"pass","reason":"ok",`+
		`"mode":"online","gate":"opened","policy":"sha256:f6849c7b9a81e61a","health_code":"green",`+
		`"nat_sampled_at":"%s","platform_request_id":"p-%s","decision_ms":%d,"clock":"synced"}`,
		id, seq, ts.Format("2006-01-02T15:04:05.000Z07:00"), ts.Add(-6*time.Hour).Format(time.RFC3339), hex.EncodeToString(rid), seq%40), nil
}

// fill appends n passage records with 64 concurrent appenders (group commit).
func fill(tb testing.TB, o *Outbox, n int) {
	tb.Helper()
	var wg sync.WaitGroup
	per := n / 64
	for w := range 64 {
		k := per
		if w == 0 {
			k += n - per*64
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range k {
				if _, err := o.Append(context.Background(), "passage", "sentinel/v1/350582-0001/gate-01/passage", passagePayload); err != nil {
					tb.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkDrain drains a 100,000-record backlog of passages to Mosquitto (a subscriber
// attached) and, meanwhile, every 20 ms appends a live event (a priority stream) and a live
// passage and measures their latency from Append's return to their PUBACK being marked.
func BenchmarkDrain(b *testing.B) {
	for _, window := range []int{32, 256} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			for range b.N {
				benchDrain(b, window)
			}
		})
	}
}

func benchDrain(b *testing.B, window int) {
	backlog := 100_000
	if v := os.Getenv("DRAIN_N"); v != "" {
		fmt.Sscan(v, &backlog)
	}
	b.StopTimer()
	broker := mqtttest.Start(b)
	col := broker.Subscribe(b, "sentinel/#")
	o, _ := openTemp(b, Options{Logger: slog.New(slog.DiscardHandler)})
	fill(b, o, backlog)

	var mu sync.Mutex
	delivered := 0
	appendedAt := map[string]time.Time{} // live records
	deliveredAt := map[string]time.Time{}
	streamOf := map[string]string{}
	done := make(chan struct{})
	log, _ := testLogger(b)
	u := NewUplink(o, UplinkConfig{Brokers: []string{broker.URL()}, Window: window, Logger: log, OnDelivered: func(e Entry) {
		at := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if e.Stream == "passage" && e.Seq <= int64(backlog) { // fill appended the backlog first
			delivered++
			if delivered == backlog {
				close(done)
			}
			return
		}
		deliveredAt[e.ID] = at
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.StartTimer()
	start := time.Now()
	go func() { _ = u.Run(ctx) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(5 * time.Minute)
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
			// A live event (a priority stream) and a live passage.
			for _, stream := range []string{"event", "passage"} {
				e, err := o.Append(context.Background(), stream, "sentinel/v1/350582-0001/gate-01/"+stream, passagePayload)
				if err != nil {
					b.Fatal(err)
				}
				at := time.Now()
				mu.Lock()
				appendedAt[e.ID], streamOf[e.ID] = at, stream
				mu.Unlock()
			}
		case <-timeout:
			b.Fatal("drain did not finish in 5 minutes")
		}
	}
	took := time.Since(start)
	b.StopTimer()
	cancel()
	defer b.StartTimer()
	col.WaitN(backlog, 30*time.Second)
	b.ReportMetric(float64(backlog)/took.Seconds(), "msgs/s")
	mu.Lock()
	defer mu.Unlock()
	lat := map[string][]time.Duration{}
	for id, t0 := range appendedAt {
		if t1, ok := deliveredAt[id]; ok { // the last few may still be on their way
			lat[streamOf[id]] = append(lat[streamOf[id]], max(0, t1.Sub(t0)))
		}
	}
	for stream, l := range lat {
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		b.ReportMetric(float64(l[len(l)/2].Microseconds())/1000, "live-"+stream+"-p50-ms")
		b.ReportMetric(float64(l[len(l)*99/100].Microseconds())/1000, "live-"+stream+"-p99-ms")
		b.ReportMetric(float64(len(l)), "live-"+stream+"-records")
	}
}

// BenchmarkFootprint stores 1,000,000 pending passage records (sealing on) and reports the
// bytes on disk per record, the database size and what queue.max_bytes accounts.
func BenchmarkFootprint(b *testing.B) {
	if v := os.Getenv("FOOTPRINT_N"); v != "" {
		fmt.Sscan(v, &footprintN)
	}
	for b.Loop() {
		n := footprintN
		_, st, fi := filled(b, Options{Synchronous: "NORMAL", Logger: slog.New(slog.DiscardHandler)}, n)
		b.ReportMetric(float64(fi.Size())/float64(n), "disk-bytes/record")
		b.ReportMetric(float64(st.BytesOnDisk)/1e6, "disk-MB")
		b.ReportMetric(float64(st.Bytes)/1e6, "accounted-MB")
		b.ReportMetric(float64(st.Bytes)/float64(fi.Size()), "accounted/disk")
	}
}

// filled is a fresh outbox with n passages, checkpointed, its stats and its file's.
func filled(b *testing.B, opts Options, n int) (*Outbox, Stats, os.FileInfo) {
	o, path := openTemp(b, opts)
	fill(b, o, n)
	if _, err := o.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	st, err := o.Stats(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return o, st, fi
}

// footprintN is how many records BenchmarkFootprint stores.
var footprintN = 1_000_000
