//go:build !linux

package mqtttest

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
