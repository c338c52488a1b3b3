//go:build unix

package queue

import "syscall"

// canWrite reports, without opening it, whether this process may write path (access(2)
// with W_OK: permissions, and EROFS for a read-only file system).
func canWrite(path string) error { return syscall.Access(path, 0x2) }
