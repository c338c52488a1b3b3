package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
)

// The unit's small state files live in the state directory, beside the queue's database:
// commands-seen.json (command nonces) and gate-mode.json (the remote gate mode). Each is
// written atomically and a corrupt one is moved aside, never overwritten.

// stateFile returns the path of the state file name, in the queue's directory.
func stateFile(cfg *config.Config, name string) string {
	return filepath.Join(filepath.Dir(cfg.Queue.Path), name)
}

// writeFileAtomic replaces path with b: a temp file in the same directory, fsync, rename,
// then fsync of the directory, so that a crash leaves the old file or the new, never a
// torn one.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("agent: write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("agent: write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // the rename itself; some file systems refuse a directory fsync
		_ = d.Close()
	}
	return nil
}

// moveAside renames a corrupt state file out of the way, keeping it for a post-mortem (one
// name per nanosecond: an earlier one is never overwritten), and returns where it went (""
// when it could not be moved).
func moveAside(path string) string {
	aside := path + ".corrupt-" + time.Now().UTC().Format("20060102T150405.000000000")
	if err := os.Rename(path, aside); err != nil {
		return ""
	}
	return aside
}
