package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

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

// TestQueueCommandsCorrupt: queue stats and queue ids check the database as the agent's start
// does (quick_check): on a file `run` refuses as damaged they say so, name salvage, and exit 1,
// instead of printing normal figures with exit 0. The damage is one overwritten 4 KiB page:
// the one that holds a record, or the root of the (stream, seq) index, which neither command
// reads.
func TestQueueCommandsCorrupt(t *testing.T) {
	tests := []struct {
		name string
		page func(t *testing.T, db string, file []byte, victim uuid.UUID) int // the page to overwrite, from 1
	}{
		{"record page", func(t *testing.T, _ string, file []byte, victim uuid.UUID) int {
			off := bytes.Index(file, victim[:])
			if off < 0 {
				t.Fatal("the victim's id is not in the file")
			}
			return off/4096 + 1
		}},
		{"index page", func(t *testing.T, db string, _ []byte, _ uuid.UUID) int {
			c, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var root int
			if err := c.QueryRow(`SELECT rootpage FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' AND sql IS NULL`).Scan(&root); err != nil {
				t.Fatal(err)
			}
			return root
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "queue.db")
			o, err := queue.Open(db, queue.Options{Synchronous: "NORMAL"})
			if err != nil {
				t.Fatal(err)
			}
			var victim uuid.UUID
			for i := range 300 {
				e, err := o.Append(context.Background(), "passage", "s/v1/g1/passage", func(seq int64, id string) ([]byte, error) {
					return fmt.Appendf(nil, `{"id":%q,"seq":%d,"pad":%q}`, id, seq, strings.Repeat("x", 200)), nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if i == 149 {
					victim = uuid.MustParse(e.ID)
				}
			}
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(db)
			if err != nil {
				t.Fatal(err)
			}
			page := (tt.page(t, db, b, victim) - 1) * 4096
			copy(b[page:page+4096], bytes.Repeat([]byte{0xa5}, 4096))
			if err := os.WriteFile(db, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := queue.Open(db, queue.Options{}); !errors.Is(err, queue.ErrCorrupt) {
				t.Fatalf("the agent's Open: %v, want ErrCorrupt (the test's damage is not the kind run refuses)", err)
			}
			cfg := queueConfigFile(t, db)
			for _, args := range [][]string{{"queue", "stats"}, {"queue", "stats", "--json"}, {"queue", "ids"}} {
				var out, errb bytes.Buffer
				code := run(append(args, "--config", cfg), &out, &errb)
				if code != exitFailure || !strings.Contains(errb.String(), "damaged") || !strings.Contains(errb.String(), "salvage") {
					t.Errorf("%s: exit %d (want %d), stderr %q: want it to say the database is damaged and name salvage", args, code, exitFailure, errb.String())
				}
			}
			if after, _ := os.ReadFile(db); !bytes.Equal(after, b) {
				t.Fatal("the damaged file was modified")
			}
		})
	}
}
