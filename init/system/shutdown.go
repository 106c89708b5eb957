package system

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/mountinfo"
)

// Action is how the machine ends.
type Action int

const (
	PowerOff Action = iota
	Reboot
	Halt
)

func (a Action) String() string {
	switch a {
	case PowerOff:
		return "power off"
	case Reboot:
		return "reboot"
	case Halt:
		return "halt"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

func (a Action) rebootCmd() int {
	switch a {
	case Reboot:
		return unix.LINUX_REBOOT_CMD_RESTART
	case Halt:
		return unix.LINUX_REBOOT_CMD_HALT
	}
	return unix.LINUX_REBOOT_CMD_POWER_OFF
}

// dataDirs hold the writable data whose filesystem must be clean when the machine goes down:
// the data partition, and the ESP, whose FAT marks itself dirty while mounted.
func dataDirs() []string { return []string{"/local", "/var", contract.ESPMount} }

// servicesStopTimeout bounds stopping all services: each gets SIGTERM, 10 s, SIGKILL, 5 s, and
// a dependency chain stops one link after the other.
const servicesStopTimeout = 60 * time.Second

// Shutdown lets the holders of delay locks (the kubelet) finish first, stops the services in
// reverse dependency order, ends every other process, unmounts the data partition and calls
// reboot(2). On a machine it does not return; it does if reboot(2)
// fails, and the init keeps serving.
func (i *Init) Shutdown(act Action, cause string) {
	if i.shutDown {
		i.console.Milestone("shutdown", "%s (%s) again", act, cause)
		i.reboot(act)
		return
	}
	i.shutDown = true
	i.console.Milestone("shutdown", "%s (%s)", act, cause)
	// Before the services stop: the kubelet stops its pods while the runtime still runs.
	i.prepareForShutdown()
	if i.sup != nil {
		ctx, cancel := context.WithTimeout(context.Background(), servicesStopTimeout)
		if err := i.sup.Stop(ctx); err != nil {
			i.console.Errorf("shutdown: %v", err)
		}
		cancel()
	}
	i.killAll()
	i.closeLogs()
	i.kernel.Sync()
	i.unmountData()
	i.kernel.Sync()
	i.reboot(act)
}

func (i *Init) reboot(act Action) {
	i.console.Milestone(act.String(), "")
	if err := i.kernel.Reboot(act.rebootCmd()); err != nil {
		i.console.Errorf("%s: reboot(2): %v", act, err)
	}
}

// killAll ends the processes that are not services (a shell's children, leftovers of stopped
// services): SIGTERM, a grace period, SIGKILL. The reaper collects them meanwhile.
func (i *Init) killAll() {
	for step, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		err := i.kernel.KillAll(sig)
		if errors.Is(err, syscall.ESRCH) {
			return // nobody left
		}
		if err != nil {
			i.console.Errorf("shutdown: kill -%s -1: %v", signalName(sig), err)
		}
		if sig == syscall.SIGTERM {
			// A stopped process acts on SIGTERM only once continued.
			_ = i.kernel.KillAll(syscall.SIGCONT)
		}
		deadline := time.Now().Add(i.killWait[step])
		for time.Now().Before(deadline) {
			if n, err := i.kernel.Processes(); err == nil && n == 0 {
				return
			}
			time.Sleep(i.killPoll)
		}
	}
	i.console.Errorf("shutdown: processes are left after SIGKILL")
}

// unmountData unmounts /var, /local and the ESP and what is mounted below them, upper mounts
// first. A busy mount is remounted read-only instead, which is what keeps the filesystem clean.
func (i *Init) unmountData() {
	mounts, err := mountinfo.ReadFile(i.path(mountinfo.Self))
	if err != nil {
		i.console.Errorf("shutdown: %v", err)
		// Try the two the initramfs made anyway, the bind first.
		mounts = []mountinfo.Mount{{MountPoint: "/local", Root: "/"}, {MountPoint: "/var", Root: "/var"}}
	}
	for _, m := range dataMounts(mounts) {
		err := i.kernel.Unmount(m.MountPoint, 0)
		if err == nil {
			continue
		}
		flags := uintptr(unix.MS_REMOUNT | unix.MS_RDONLY)
		if m.Root != "/" {
			// A bind mount: only this mount's flag changes; the filesystem goes read-only with
			// its own mount.
			flags |= unix.MS_BIND
		}
		if rerr := i.kernel.Mount("", m.MountPoint, "", flags, ""); rerr != nil {
			i.console.Errorf("shutdown: unmount %s: %v; remount read-only: %v", m.MountPoint, err, rerr)
		}
	}
}

// dataMounts returns the mounts at or below the data directories, in unmount order.
func dataMounts(mounts []mountinfo.Mount) []mountinfo.Mount {
	var out []mountinfo.Mount
	for _, m := range mountinfo.Under(mounts, "/") {
		for _, d := range dataDirs() {
			if m.MountPoint == d || strings.HasPrefix(m.MountPoint, d+"/") {
				out = append(out, m)
				break
			}
		}
	}
	return out
}
