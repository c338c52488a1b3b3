//go:build linux

package scanner

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/term"
)

// Duplex is a pty for a simulated device that answers requests (an ID-card reader): what
// the agent writes to the slave is read from the Duplex, and what the Duplex writes reaches
// the agent. The slave is held open in raw mode for the Duplex's life, and the path is a
// symlink to it, as for Port.
type Duplex struct {
	path, device  string
	log           *slog.Logger
	master, slave *os.File
	closeOnce     sync.Once
	closeErr      error
}

// OpenDuplex creates a pty and links path to its slave. A stale symlink is replaced; a
// regular file or directory at path is refused with ErrExists.
func OpenDuplex(path string, logger *slog.Logger) (*Duplex, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if li, err := os.Lstat(path); err == nil && li.Mode()&os.ModeSymlink == 0 {
		return nil, fmt.Errorf("%w: %s", ErrExists, path)
	}
	master, slave, err := openPTYPair()
	if err != nil {
		return nil, fmt.Errorf("scanner: open pty: %w", err)
	}
	d := &Duplex{path: path, device: slave.Name(), log: logger.With("port", path), master: master, slave: slave}
	fail := func(err error) (*Duplex, error) {
		master.Close()
		slave.Close()
		return nil, err
	}
	if err := control(slave, func(fd int) error { _, err := term.MakeRaw(fd); return err }); err != nil {
		return fail(fmt.Errorf("scanner: raw mode on %s: %w", d.device, err))
	}
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	_ = os.Remove(tmp)
	if err := os.Symlink(d.device, tmp); err != nil {
		return fail(fmt.Errorf("scanner: link %s: %w", path, err))
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fail(fmt.Errorf("scanner: link %s: %w", path, err))
	}
	d.log.Info("pty ready", "device", d.device)
	return d, nil
}

// String is "PATH -> /dev/pts/N".
func (d *Duplex) String() string { return d.path + " -> " + d.device }

// Path is the path the pty was linked at.
func (d *Duplex) Path() string { return d.path }

// Read reads what the agent wrote. Close unblocks it with ErrClosed.
func (d *Duplex) Read(b []byte) (int, error) {
	n, err := d.master.Read(b)
	if errors.Is(err, os.ErrClosed) {
		return n, ErrClosed
	}
	return n, err
}

// Write sends b to the agent. Close unblocks it with ErrClosed.
func (d *Duplex) Write(b []byte) (int, error) {
	n, err := d.master.Write(b)
	if errors.Is(err, os.ErrClosed) {
		return n, ErrClosed
	}
	return n, err
}

// Close removes the symlink (if it still points at this pty) and closes both sides: the
// agent's reads then fail, as when a USB reader is unplugged.
func (d *Duplex) Close() error {
	d.closeOnce.Do(func() {
		var errs []error
		if target, err := os.Readlink(d.path); err == nil && target == d.device {
			if err := os.Remove(d.path); err != nil {
				errs = append(errs, fmt.Errorf("scanner: remove link %s: %w", d.path, err))
			}
		}
		if err := d.master.Close(); err != nil {
			errs = append(errs, fmt.Errorf("scanner: close %s: %w", d.path, err))
		}
		if err := d.slave.Close(); err != nil {
			errs = append(errs, fmt.Errorf("scanner: close %s: %w", d.device, err))
		}
		d.closeErr = errors.Join(errs...)
		d.log.Info("port closed")
	})
	return d.closeErr
}
