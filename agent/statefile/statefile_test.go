package statefile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	p := Path(filepath.Join(dir, "queue.db"), "gate-mode.json")
	if p != filepath.Join(dir, "gate-mode.json") {
		t.Fatalf("Path = %s", p)
	}
	for _, v := range []string{"one", "two"} {
		if err := Write(p, []byte(v)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != v {
			t.Fatalf("file holds %q, want %q", b, v)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temp files left behind: %v", ents)
	}
}

func TestWriteFailsInMissingDir(t *testing.T) {
	err := Write(filepath.Join(t.TempDir(), "nope", "f.json"), []byte("x"))
	if err == nil || !strings.HasPrefix(err.Error(), "statefile: write ") {
		t.Fatalf("err = %v", err)
	}
}

func TestMoveAside(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.json")
	if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	aside := MoveAside(p)
	if aside == "" || !strings.HasPrefix(aside, p+".corrupt-") {
		t.Fatalf("aside = %q", aside)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("original still there: %v", err)
	}
	if MoveAside(p) != "" {
		t.Fatal("moving a missing file aside should say so")
	}
}
