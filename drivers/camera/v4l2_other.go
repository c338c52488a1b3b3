//go:build !linux

package camera

import "errors"

func openV4L2(string) (Frames, error) { return nil, errors.New("V4L2 cameras need Linux") }

func isWaitTimeout(error) bool { return false }
