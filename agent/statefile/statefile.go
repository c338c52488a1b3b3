package statefile

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Path returns the path of the state file name in the state directory: the directory of the
// queue's database at queuePath.
func Path(queuePath, name string) string {
	return filepath.Join(filepath.Dir(queuePath), name)
}

// Write replaces path with b: a temp file in the same directory, fsync, rename, then fsync of
// the directory, so that a crash leaves the old file or the new, never a torn one.
func Write(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("statefile: write %s: %w", path, err)
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
		return fmt.Errorf("statefile: write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // the rename itself; some file systems refuse a directory fsync
		_ = d.Close()
	}
	return nil
}

// MoveAside renames a corrupt state file out of the way, keeping it for a post-mortem (one
// name per nanosecond: an earlier one is never overwritten), and returns where it went (""
// when it could not be moved).
func MoveAside(path string) string {
	aside := path + ".corrupt-" + time.Now().UTC().Format("20060102T150405.000000000")
	if err := os.Rename(path, aside); err != nil {
		return ""
	}
	return aside
}
