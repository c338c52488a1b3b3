//go:build linux

package qrscan

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// eviocgrab is EVIOCGRAB, _IOW('E', 0x90, int).
const eviocgrab = 0x40044590

func openEventDevice(path string) (EventDevice, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) { err = unix.IoctlSetInt(int(fd), eviocgrab, 1) })
		if cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("grab %s (is it an input event device, and free?): %w", path, err)
	}
	return f, nil
}
