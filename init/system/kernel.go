package system

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	// Processes counts the processes KillAll still has to wait for: every one but PID 1, kernel
	// threads and zombies. (kill(-1, 0) cannot tell: it succeeds as long as a kernel thread exists,
	// which is always.)
	Processes() (int, error)
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

func (Linux) Processes() (int, error) { return countProcesses("/proc") }

func (Linux) Sync() { unix.Sync() }

// pfKthread is PF_KTHREAD in the flags of /proc/<pid>/stat.
const pfKthread = 0x00200000

// countProcesses counts the live user processes under proc other than PID 1. A process that ends
// while it is being looked at is not counted.
func countProcesses(proc string) (int, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(proc, e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid pgrp session tty_nr tpgid flags ...; comm may hold spaces and ')'.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			return 0, fmt.Errorf("%s/%d/stat: no ')'", proc, pid)
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 7 {
			return 0, fmt.Errorf("%s/%d/stat: %d fields after the command", proc, pid, len(f))
		}
		flags, err := strconv.ParseUint(f[6], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s/%d/stat: flags %q", proc, pid, f[6])
		}
		if f[0] == "Z" || f[0] == "X" || flags&pfKthread != 0 {
			continue
		}
		n++
	}
	return n, nil
}

func (Linux) Reboot(cmd int) error { return unix.Reboot(cmd) }
