//go:build !linux

package qrscan

import "errors"

func openEventDevice(path string) (EventDevice, error) {
	return nil, errors.New("evdev scanners need Linux")
}
