//go:build unix

package secretfile

import "syscall"

// openFlags keep an open from blocking (a FIFO without a writer) or taking a controlling
// terminal. Go opens every file close-on-exec.
const openFlags = syscall.O_NONBLOCK | syscall.O_NOCTTY
