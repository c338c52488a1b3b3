package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentinel-edge/sentinel/queue"
)

// TestQueueSalvageCommand: exit 2 for a usage error, 0 and a report when it copied, 1 when
// the target exists or the source cannot be read at all.
func TestQueueSalvageCommand(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "queue.db")
	o, err := queue.Open(db, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := o.Append(context.Background(), "passage", "s/v1/g1/passage", func(seq int64, id string) ([]byte, error) {
			return fmt.Appendf(nil, `{"id":%q,"seq":%d}`, id, seq), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := queueConfigFile(t, db)
	out := filepath.Join(t.TempDir(), "new.db")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no --out", []string{"--config", cfg}, exitUsage, "--out NEW.db is required"},
		{"no --config", []string{"--out", out}, exitUsage, "--config FILE is required"},
		{"copies", []string{"--config", cfg, "--out", out}, exitOK, "copied        3 records (3 pending)"},
		{"target exists", []string{"--config", cfg, "--out", out}, exitFailure, "never overwrites"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"queue", "salvage"}, tt.args...), &stdout, &stderr)
		if code != tt.code || !strings.Contains(stdout.String()+stderr.String(), tt.want) {
			t.Fatalf("%s: exit %d, want %d with %q:\n%s%s", tt.name, code, tt.code, tt.want, stdout.String(), stderr.String())
		}
	}
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 500), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"queue", "salvage", "--config", queueConfigFile(t, garbage), "--out", filepath.Join(t.TempDir(), "n.db")}, &stdout, &stderr); code != exitFailure ||
		!strings.Contains(stderr.String(), garbage) {
		t.Fatalf("garbage source: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}
