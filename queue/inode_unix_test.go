//go:build unix

package queue

import (
	"os"
	"syscall"
)

func inodeOf(fi os.FileInfo) uint64 { return fi.Sys().(*syscall.Stat_t).Ino }
