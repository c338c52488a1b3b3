package queue

import (
	"fmt"
	"path/filepath"
	"sync"
)

// POSIX advisory locks belong to a process and a file, not to a descriptor: closing any
// descriptor of the database drops every lock the process holds on it, and an outside
// sqlite3 then believes it is alone and deletes the live WAL (SQLite, "How To Corrupt An
// SQLite Database File", 2.2). So a process opens a queue database once: Open claims its path
// here for the Outbox's life, a second Open of it is refused, and OpenReader on it reads
// through the Outbox's own pool instead of opening the file again.

var registry = struct {
	sync.Mutex
	open map[string]*Outbox
}{open: map[string]*Outbox{}}

// canonicalPath is the key of path in the registry: absolute, cleaned, with the directory's
// symbolic links resolved (and the file's, when it exists). It only stats and reads links;
// it never opens the file.
func canonicalPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("queue: open %s: %w", path, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real, nil
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(dir, filepath.Base(abs)), nil
	}
	return abs, nil
}

// claim records that o holds path (its canonical form key) for its life. It fails when an
// Outbox of this process already holds it.
func claim(key, path string, o *Outbox) error {
	registry.Lock()
	defer registry.Unlock()
	if _, held := registry.open[key]; held {
		return fmt.Errorf("queue: open %s: this process has it open already (%s); a process opens its queue database once (use that Outbox, or OpenReader, which shares it): %w",
			path, key, ErrInUse)
	}
	registry.open[key] = o
	return nil
}

// release forgets o's claim.
func release(key string, o *Outbox) {
	registry.Lock()
	defer registry.Unlock()
	if registry.open[key] == o {
		delete(registry.open, key)
	}
}

// holder returns the Outbox of this process that holds path, if any.
func holder(path string) *Outbox {
	key, err := canonicalPath(path)
	if err != nil {
		return nil
	}
	registry.Lock()
	defer registry.Unlock()
	return registry.open[key]
}
