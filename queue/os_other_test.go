//go:build !unix

package queue

import (
	"errors"
	"os"
	"time"
)

func inodeOf(os.FileInfo) uint64 { return 0 }

func processCPU() time.Duration { return 0 }

func mkfifo(string) error { return errors.ErrUnsupported }
