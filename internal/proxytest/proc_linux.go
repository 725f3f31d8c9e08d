package proxytest

import "syscall"

// sysProcAttr kills the proxy with the test process, should that die
// without running its cleanups (a test binary timing out).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
