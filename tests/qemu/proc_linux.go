package qemu

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel kill QEMU if the test binary dies without
// cleaning up (e.g. go test's own timeout), so no TCG guest is left
// spinning. Pdeathsig fires when the starting OS thread exits; Go keeps
// threads alive unless they are locked, which is good enough here.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
