package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentinel-edge/sentinel/queue"
)

// queueConfigFile writes a valid config whose queue is at dbPath.
func queueConfigFile(t *testing.T, dbPath string) string {
	t.Helper()
	cfg := fmt.Sprintf(`device: {id: g1, venue: v1, style: reduced_gate}
scanners: {qr: {driver: serial, port: /dev/null}}
platform: {url: "http://127.0.0.1:1"}
queue: {path: %s}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
`, dbPath)
	p := filepath.Join(t.TempDir(), "sentinel.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestQueueCommands runs queue stats and queue ids against an outbox that is open for
// writing, as it is while the daemon runs.
func TestQueueCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "queue.db")
	o, err := queue.Open(db, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	var ids []string
	for i := range 3 {
		e, err := o.Append(context.Background(), "passage", "s/v1/g1/passage", func(seq int64, id string) ([]byte, error) {
			return fmt.Appendf(nil, `{"id":%q,"seq":%d}`, id, seq), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
		if i == 0 {
			if err := o.MarkDelivered(context.Background(), e.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := queueConfigFile(t, db)

	var out, errb bytes.Buffer
	if code := run([]string{"queue", "stats", "--config", cfg, "--json"}, &out, &errb); code != exitOK {
		t.Fatalf("queue stats --json: exit %d: %s", code, errb.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if m["pending"] != 2.0 || m["delivered"] != 1.0 || m["dropped"] != 0.0 || m["last_delivery"] == nil {
		t.Fatalf("stats JSON %v", m)
	}
	out.Reset()
	if code := run([]string{"queue", "stats", "--config", cfg}, &out, &errb); code != exitOK ||
		!strings.Contains(out.String(), "pending          2") || !strings.Contains(out.String(), "last delivery") {
		t.Fatalf("queue stats: exit %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"queue", "ids", "--config", cfg}, &out, &errb); code != exitOK {
		t.Fatalf("queue ids: exit %d: %s", code, errb.String())
	}
	if got := strings.Fields(out.String()); strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("queue ids = %v, want %v", got, ids)
	}
}

func TestQueueCommandErrors(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, "foreign.db")
	if err := os.WriteFile(foreign, bytes.Repeat([]byte("not a database "), 100), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no subcommand", []string{"queue"}, exitUsage, "queue stats"},
		{"unknown subcommand", []string{"queue", "purge"}, exitUsage, `unknown subcommand "purge"`},
		{"no config", []string{"queue", "stats"}, exitUsage, "--config FILE is required"},
		{"missing db", []string{"queue", "ids", "--config", queueConfigFile(t, filepath.Join(dir, "none.db"))}, exitFailure, "none.db does not exist"},
		{"foreign db", []string{"queue", "stats", "--config", queueConfigFile(t, foreign)}, exitFailure, "foreign.db: it is not an SQLite database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tt.args, &out, &errb); code != tt.code || !strings.Contains(errb.String(), tt.stderr) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tt.code, errb.String(), tt.stderr)
			}
		})
	}
	b, _ := os.ReadFile(foreign)
	if !bytes.Equal(b, bytes.Repeat([]byte("not a database "), 100)) {
		t.Fatal("the foreign file was modified")
	}
}
