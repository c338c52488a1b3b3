package secretfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// DefaultMaxSize bounds a file when Options.MaxSize is 0: far more than any secret, key or
// certificate chain a unit holds.
const DefaultMaxSize = 64 << 10

// Sentinels wrapped by every error of the package.
var (
	ErrRead       = errors.New("secretfile: cannot read")
	ErrNotRegular = errors.New("secretfile: not a regular file")
	ErrTooLarge   = errors.New("secretfile: too large")
	ErrTooOpen    = errors.New("secretfile: group or others have access")
	ErrEmpty      = errors.New("secretfile: empty")
)

// Options say how a file is read.
type Options struct {
	// Key is the config key that names the file (e.g. platform.secret_file), for messages;
	// empty leaves it out (a caller that prefixes its own).
	Key string
	// MaxSize is the largest file accepted, in bytes; 0 means DefaultMaxSize.
	MaxSize int64
	// Public says the file holds no secret (a certificate, a public key): it may then be
	// readable by group and others. Every other check stands.
	Public bool
}

// Error is a refused or unreadable file. It never holds the file's content.
type Error struct {
	Key    string // the config key, when the caller gave one
	Path   string
	Err    error  // one of the package's sentinels
	Detail string // what was found, and what to do
	// Cause is the operating system's error behind ErrRead (e.g. fs.ErrNotExist matches
	// it); nil for the other sentinels.
	Cause error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("secretfile: ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Path)
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(e.Err.Error(), "secretfile: "))
	if e.Detail != "" {
		b.WriteString(" (")
		b.WriteString(e.Detail)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the sentinel and, for ErrRead, the operating system's error.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

func (o Options) readErr(path string, err error) error {
	return &Error{Key: o.Key, Path: path, Err: ErrRead, Detail: pathErr(err), Cause: err}
}

func (o Options) fail(path string, sentinel error, format string, args ...any) error {
	return &Error{Key: o.Key, Path: path, Err: sentinel, Detail: fmt.Sprintf(format, args...)}
}

func (o Options) max() int64 {
	if o.MaxSize > 0 {
		return o.MaxSize
	}
	return DefaultMaxSize
}

// Read returns the content of the file at path after the checks of the package doc: a
// regular file of at most MaxSize bytes, and for a secret, a mode without group or other
// bits.
func Read(path string, opt Options) ([]byte, error) {
	// Stat first, so that a device or a FIFO is refused without being opened at all (opening
	// some devices has effects); fstat again after opening, for the file actually opened.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, opt.readErr(path, err)
	}
	if err := opt.check(path, fi); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, opt.readErr(path, err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, opt.readErr(path, err)
	}
	if err := opt.check(path, fi); err != nil {
		return nil, err
	}
	limit := opt.max()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, opt.readErr(path, err)
	}
	if int64(len(b)) > limit {
		return nil, opt.fail(path, ErrTooLarge, "more than %d bytes", limit)
	}
	return b, nil
}

// check refuses what is not a regular file, is too large, or is a secret open to others.
func (o Options) check(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return o.fail(path, ErrNotRegular, "it is %s; name a file that holds the value", kind(fi.Mode()))
	}
	if limit := o.max(); fi.Size() > limit {
		return o.fail(path, ErrTooLarge, "%d bytes, at most %d accepted", fi.Size(), limit)
	}
	if perm := fi.Mode().Perm(); !o.Public && perm&0o077 != 0 {
		return o.fail(path, ErrTooOpen, "mode %04o; a secret must be for its owner only: run chmod 600 %s", perm, path)
	}
	return nil
}

// ReadSecret reads a secret held as the whole file: the content with surrounding white space
// removed. An empty (or all white space) file is refused.
func ReadSecret(path string, opt Options) ([]byte, error) {
	b, err := Read(path, opt)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, opt.fail(path, ErrEmpty, "it holds no value")
	}
	return b, nil
}

// ReadLine reads a credential held on the first line of the file (a user name, a password):
// the line without its end (LF or CR LF); the rest of the file is ignored. An empty first
// line is refused. Inner and surrounding spaces are kept: they may be part of a password.
func ReadLine(path string, opt Options) (string, error) {
	b, err := Read(path, opt)
	if err != nil {
		return "", err
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return "", opt.fail(path, ErrEmpty, "the first line is empty")
	}
	return string(b), nil
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "not a regular file"
}

// pathErr drops the operation and path of an *fs.PathError (the message names the path
// already).
func pathErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
