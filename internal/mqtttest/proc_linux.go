package mqtttest

import "syscall"

// sysProcAttr makes the kernel kill the broker if the test binary dies without cleanup.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
