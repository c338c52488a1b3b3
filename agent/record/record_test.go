package record_test

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/queue"
)

func TestTopic(t *testing.T) {
	u := record.Unit{Prefix: "sentinel/v1", Venue: "350582-0001", Device: "gate-01"}
	if got, want := u.Topic(record.StreamPassage), "sentinel/v1/350582-0001/gate-01/passage"; got != want {
		t.Fatalf("Topic = %q, want %q", got, want)
	}
	// The outbox names its own notice stream; the two must agree.
	if record.StreamQueue != queue.NoticeStream {
		t.Fatalf("StreamQueue %q != queue.NoticeStream %q", record.StreamQueue, queue.NoticeStream)
	}
}

func TestTS(t *testing.T) {
	at := time.Date(2026, 11, 25, 8, 0, 1, 123456789, time.FixedZone("CST", 8*3600))
	if got, want := record.TS(at), "2026-11-25T00:00:01.123Z"; got != want {
		t.Fatalf("TS = %q, want %q", got, want)
	}
}

// The passage record's field names are a contract (README "Record format"): this list may
// grow, never shrink or change.
func TestPassageFields(t *testing.T) {
	b, err := json.Marshal(record.Passage{HealthCode: "green", NATSampledAt: "x", PlatformRequestID: "x", Fallback: "x",
		Flagged: true, GateMode: "x", TimeSource: "x", PlatformTime: "x", Subject: record.Subject{Sealed: "x", Hash: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	want := []string{"clock", "credential", "decision_ms", "device", "fallback", "flagged", "gate", "gate_mode", "health_code", "id",
		"mode", "nat_sampled_at", "platform_request_id", "platform_time", "policy", "reason", "seq", "subject", "time_source", "ts", "venue", "verdict"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("passage fields\n got %v\nwant %v", got, want)
	}
}
