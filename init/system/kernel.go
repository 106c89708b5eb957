package system

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Kernel is everything the system init asks of the kernel that only PID 1 (or root on a real
// machine) may do. Tests use a recording fake; Linux is the real thing.
type Kernel interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
	Unmount(target string, flags int) error
	Sethostname(name string) error
	// DisableCtrlAltDel makes the kernel send SIGINT to PID 1 on Ctrl-Alt-Del instead of
	// restarting on the spot without syncing.
	DisableCtrlAltDel() error
	// KillAll is kill(-1, sig): every process but PID 1 and kernel threads.
	KillAll(sig syscall.Signal) error
	Sync()
	// Reboot is reboot(2); it does not return when it works.
	Reboot(cmd int) error
}

// Linux is the Kernel of the machine the system init runs on.
type Linux struct{}

func (Linux) Mount(source, target, fstype string, flags uintptr, data string) error {
	return unix.Mount(source, target, fstype, flags, data)
}

func (Linux) Unmount(target string, flags int) error { return unix.Unmount(target, flags) }

func (Linux) Sethostname(name string) error { return unix.Sethostname([]byte(name)) }

func (Linux) DisableCtrlAltDel() error { return unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF) }

func (Linux) KillAll(sig syscall.Signal) error { return unix.Kill(-1, sig) }

func (Linux) Sync() { unix.Sync() }

func (Linux) Reboot(cmd int) error { return unix.Reboot(cmd) }
