package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
)

// Issue #14, finding 8: JSON logs gave durations in nanoseconds ("timeout":800000000). They
// are milliseconds, the key saying so.
func TestJSONLogDurationsInMS(t *testing.T) {
	var b bytes.Buffer
	log := newLogger(&config.Config{Log: config.Log{Level: "info", Format: "json"}}, &b, new(slog.LevelVar))
	log.Info("passage", "decision", 1500*time.Microsecond, "wait_ms", 2*time.Second, slog.Group("platform", "timeout", 800*time.Millisecond), "n", 3)
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, b.String())
	}
	want := map[string]float64{"decision_ms": 1.5, "wait_ms": 2000, "n": 3}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v (line %s)", k, m[k], v, b.String())
		}
	}
	if p, _ := m["platform"].(map[string]any); p["timeout_ms"] != 800.0 {
		t.Errorf("a duration in a group: %s", b.String())
	}
	if _, ok := m["decision"]; ok {
		t.Errorf("the nanosecond key is still there: %s", b.String())
	}
	b.Reset()
	newLogger(&config.Config{Log: config.Log{Level: "info", Format: "text"}}, &b, new(slog.LevelVar)).Info("x", "took", 1500*time.Millisecond)
	if !bytes.Contains(b.Bytes(), []byte("took=1.5s")) {
		t.Errorf("text logs keep Go's durations: %s", b.String())
	}
}
