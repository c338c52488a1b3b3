//go:build !unix

package queue

import (
	"os"
	"time"
)

func inodeOf(os.FileInfo) uint64 { return 0 }

func processCPU() time.Duration { return 0 }
