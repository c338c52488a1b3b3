//go:build linux

package scanner

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Port is where scans are written: a pty whose slave is linked from a path,
// or an existing character device.
type Port struct {
	path   string
	device string // /dev/pts/N or the device the path names
	log    *slog.Logger

	out   *os.File // what Write writes to: the pty master, or the device
	slave *os.File // pty only: held open for the Port's life
	state *term.State
	tty   bool // the device is a terminal (always true for a pty)

	drained   chan struct{} // pty only: closed when the master reader ends
	closeOnce sync.Once
	closeErr  error
}

var _ io.WriteCloser = (*Port)(nil)

// Open prepares path as a scanner port. When path is a character device, or
// a symlink to one outside /dev/pts, that device is opened in raw mode.
// Otherwise a pty pair is created, its slave put in raw mode and kept open,
// and path made a symlink to the slave; a stale symlink is replaced, but a
// regular file or directory at path is refused with ErrExists.
func Open(path string, logger *slog.Logger) (*Port, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	log := logger.With("port", path)
	if dev, ok, err := existingDevice(path); err != nil {
		return nil, err
	} else if ok {
		return openDevice(path, dev, log)
	}
	return openPTY(path, log)
}

// existingDevice reports whether path names a character device to write to.
func existingDevice(path string) (string, bool, error) {
	li, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("scanner: inspect %s: %w", path, err)
	}
	if li.Mode()&os.ModeCharDevice != 0 {
		return path, true, nil
	}
	if li.Mode()&os.ModeSymlink == 0 {
		return "", false, fmt.Errorf("%w: %s", ErrExists, path)
	}
	target, err := os.Readlink(path)
	if err != nil {
		return "", false, fmt.Errorf("scanner: read link %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 || strings.HasPrefix(target, "/dev/pts/") {
		// Dangling, not a device, or a pty left by an earlier simulator:
		// ours to replace.
		return "", false, nil
	}
	return target, true, nil
}

func openDevice(path, dev string, log *slog.Logger) (*Port, error) {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("scanner: open device %s: %w", path, err)
	}
	p := &Port{path: path, device: dev, log: log, out: f}
	_ = control(f, func(fd int) error { p.tty = term.IsTerminal(fd); return nil })
	if p.tty {
		if err := control(f, func(fd int) error {
			st, err := term.MakeRaw(fd)
			p.state = st
			return err
		}); err != nil {
			f.Close()
			return nil, fmt.Errorf("scanner: raw mode on %s: %w", path, err)
		}
	}
	log.Info("device opened", "device", dev, "terminal", p.tty)
	return p, nil
}

func openPTY(path string, log *slog.Logger) (*Port, error) {
	master, slave, err := openPTYPair()
	if err != nil {
		return nil, fmt.Errorf("scanner: open pty: %w", err)
	}
	p := &Port{path: path, device: slave.Name(), log: log, out: master, slave: slave, tty: true, drained: make(chan struct{})}
	fail := func(err error) (*Port, error) {
		master.Close()
		slave.Close()
		return nil, err
	}
	if err := control(slave, func(fd int) error { _, err := term.MakeRaw(fd); return err }); err != nil {
		return fail(fmt.Errorf("scanner: raw mode on %s: %w", p.device, err))
	}
	// Replace path atomically: link a temporary name, then rename it over.
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	_ = os.Remove(tmp)
	if err := os.Symlink(p.device, tmp); err != nil {
		return fail(fmt.Errorf("scanner: link %s: %w", path, err))
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fail(fmt.Errorf("scanner: link %s: %w", path, err))
	}
	// Whatever the reader writes to the scanner (a trigger command, an
	// echo) is read and dropped, so the master never fills up.
	go func() {
		defer close(p.drained)
		buf := make([]byte, 256)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				log.Debug("bytes from reader dropped", "n", n)
			}
			if err != nil {
				return
			}
		}
	}()
	log.Info("pty ready", "device", p.device)
	return p, nil
}

// openPTYPair is pty.Open with a master that is back in non-blocking mode:
// pty.Open's ioctls call Fd(), which leaves the master blocking, and then
// Close could not interrupt a Read or Write in progress.
func openPTYPair() (master, slave *os.File, err error) {
	m, slave, err := pty.Open()
	if err != nil {
		return nil, nil, err
	}
	fd, err := unix.Dup(int(m.Fd()))
	if err == nil {
		unix.CloseOnExec(fd)
		err = unix.SetNonblock(fd, true)
		if err != nil {
			unix.Close(fd)
		}
	}
	m.Close()
	if err != nil {
		slave.Close()
		return nil, nil, err
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), slave, nil
}

// String is "PATH -> /dev/pts/N" for a pty and PATH for a device.
func (p *Port) String() string {
	if p.slave != nil {
		return p.path + " -> " + p.device
	}
	return p.path
}

// Path is the path the port was opened at.
func (p *Port) Path() string { return p.path }

// Device is the device behind the path: /dev/pts/N for a pty.
func (p *Port) Device() string { return p.device }

// Write writes b to the port. Close unblocks a Write waiting for room.
func (p *Port) Write(b []byte) (int, error) {
	n, err := p.out.Write(b)
	if errors.Is(err, os.ErrClosed) {
		return n, ErrClosed
	}
	return n, err
}

// queued is the number of bytes written but not yet read or sent; always 0
// for a device that is not a terminal.
func (p *Port) queued() (int, error) {
	if !p.tty {
		return 0, nil
	}
	f, req := p.out, unix.TIOCOUTQ
	if p.slave != nil {
		f, req = p.slave, unix.TIOCINQ
	}
	var n int
	err := control(f, func(fd int) error {
		var err error
		n, err = unix.IoctlGetInt(fd, uint(req))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("scanner: queue size of %s: %w", p.device, err)
	}
	return n, nil
}

// Close removes the symlink (if it still points at this pty) and closes the
// port. It may be called more than once and from another goroutine than
// Write.
func (p *Port) Close() error {
	p.closeOnce.Do(func() {
		var errs []error
		if p.slave != nil {
			if target, err := os.Readlink(p.path); err == nil && target == p.device {
				if err := os.Remove(p.path); err != nil {
					errs = append(errs, fmt.Errorf("scanner: remove link %s: %w", p.path, err))
				}
			}
		}
		if p.state != nil {
			_ = control(p.out, func(fd int) error { return term.Restore(fd, p.state) })
		}
		if err := p.out.Close(); err != nil {
			errs = append(errs, fmt.Errorf("scanner: close %s: %w", p.path, err))
		}
		if p.slave != nil {
			<-p.drained
			if err := p.slave.Close(); err != nil {
				errs = append(errs, fmt.Errorf("scanner: close %s: %w", p.device, err))
			}
		}
		p.closeErr = errors.Join(errs...)
		p.log.Info("port closed")
	})
	return p.closeErr
}

// control runs fn on f's descriptor without switching f to blocking mode
// (as f.Fd() would), so Close still unblocks a pending Write.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
