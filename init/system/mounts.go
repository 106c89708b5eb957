package system

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ballast-os/ballast/contract"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/init/system/mountinfo"
)

// mountSpec is one filesystem the system init mounts.
type mountSpec struct {
	target, fstype, source string
	flags                  uintptr
	data                   string
	// mkdir: the mount point lives on a writable filesystem (devtmpfs) and may be created.
	// Otherwise it must exist: on the read-only root or in sysfs, where the kernel makes it.
	mkdir bool
	// optional: a kernel without this filesystem still boots; a missing mount point is skipped.
	optional bool
	// late: made off the boot path, because the kernel runs a helper program to make it (nothing
	// before the ready line needs it).
	late bool
}

// systemMounts are the mounts beyond the ones the initramfs made (/dev, /proc, /sys, /run,
// /local, /etc, /var), in order. With labelled (an SELinux policy is loaded), the tmpfs roots get
// their type at the mount, so they are never unlabelled.
func systemMounts(labelled bool) []mountSpec {
	const hard = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	tmp := ""
	if labelled {
		tmp = ",rootcontext=" + contract.Context(contract.SELinuxTmpType, contract.SELinuxLevel, true)
	}
	return []mountSpec{
		// gid 5 is tty; ptmxmode lets unprivileged programs open /dev/ptmx.
		{target: "/dev/pts", fstype: "devpts", source: "devpts", flags: unix.MS_NOSUID | unix.MS_NOEXEC, data: "gid=5,mode=0620,ptmxmode=0666", mkdir: true},
		// Nothing is run from the world-writable tmpfs mounts, so nothing dropped there can be.
		{target: "/dev/shm", fstype: "tmpfs", source: "shm", flags: hard, data: "mode=1777" + tmp, mkdir: true},
		{target: "/dev/mqueue", fstype: "mqueue", source: "mqueue", flags: hard, mkdir: true, optional: true},
		{target: "/tmp", fstype: "tmpfs", source: "tmpfs", flags: hard, data: "mode=1777" + tmp},
		// nsdelegate: container runtimes may delegate cgroup subtrees to namespaces safely.
		{target: "/sys/fs/cgroup", fstype: "cgroup2", source: "cgroup2", flags: hard, data: "nsdelegate"},
		{target: "/sys/kernel/security", fstype: "securityfs", source: "securityfs", flags: hard, optional: true},
		// The kernel asks for the bpf_preload module on the first bpf mount: a modprobe run,
		// a quarter of a second under emulation.
		{target: "/sys/fs/bpf", fstype: "bpf", source: "bpf", flags: hard, data: "mode=0700", optional: true, late: true},
	}
}

// devLinks are the /dev symlinks that programs expect and devtmpfs does not make.
func devLinks() [][2]string {
	return [][2]string{
		{"/dev/fd", "/proc/self/fd"},
		{"/dev/stdin", "/proc/self/fd/0"},
		{"/dev/stdout", "/proc/self/fd/1"},
		{"/dev/stderr", "/proc/self/fd/2"},
	}
}

// runDirs are created at boot under /run (a tmpfs, empty at every boot).
func runDirs() []string {
	return []string{"/run/ballast", contract.LogDir}
}

// mountAll makes the system mounts but the late ones, /dev links and /run directories; each
// step is skipped when it was done already (by the initramfs, or by an earlier run). It returns
// every failure; a failure does not stop the later steps.
func (i *Init) mountAll() error {
	errs := []error{i.mountSome(false)}
	for _, l := range devLinks() {
		link := i.path(l[0])
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(l[1], link); err != nil {
			errs = append(errs, fmt.Errorf("symlink %s: %w", l[0], err))
		}
	}
	for _, d := range runDirs() {
		if err := os.MkdirAll(i.path(d), 0o755); err != nil {
			errs = append(errs, fmt.Errorf("mkdir: %w", err))
		}
	}
	return errors.Join(errs...)
}

// mountLate makes the late system mounts.
func (i *Init) mountLate() error {
	return i.mountSome(true)
}

func (i *Init) mountSome(late bool) error {
	var errs []error
	mounts, err := mountinfo.ReadFile(i.path(mountinfo.Self))
	if err != nil {
		errs = append(errs, err)
	}
	// The initramfs loaded the policy; a system without one (tests, a kernel without SELinux)
	// would refuse rootcontext=.
	_, err = os.Stat(i.path(contract.SELinuxEnforce))
	for _, m := range systemMounts(err == nil) {
		if m.late != late {
			continue
		}
		if err := i.mountOne(mounts, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (i *Init) mountOne(mounts []mountinfo.Mount, m mountSpec) error {
	if _, ok := mountinfo.At(mounts, m.target); ok {
		return nil
	}
	dir := i.path(m.target)
	if m.mkdir {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("mount %s: %w", m.target, err)
		}
	} else if _, err := os.Stat(dir); err != nil {
		if m.optional && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("mount %s: %w", m.target, err)
	}
	err := i.kernel.Mount(m.source, m.target, m.fstype, m.flags, m.data)
	if err != nil && !(m.optional && errors.Is(err, unix.ENODEV)) {
		return fmt.Errorf("mount %s (%s): %w", m.target, m.fstype, err)
	}
	return nil
}

// path maps an absolute path of the running system to the file system the Init works on: the
// same path on a machine, a path under a test's directory in tests.
func (i *Init) path(p string) string {
	return filepath.Join(i.root, p)
}
