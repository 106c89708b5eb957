package system

import (
	"errors"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// machine lays out the files a freshly switched-to root has, with the given mount table.
func machine(t *testing.T, i *Init, mountinfoFile string) {
	t.Helper()
	b, err := os.ReadFile(mountinfoFile)
	if err != nil {
		t.Fatal(err)
	}
	write(t, i, "/proc/self/mountinfo", string(b))
	// The kernel made these sysfs directories; securityfs is not in this kernel.
	mkdirs(t, i, "/dev", "/tmp", "/run", "/sys/fs/cgroup", "/sys/fs/bpf")
	if err := os.Symlink("/proc/self/fd", i.path("/dev/fd")); err != nil {
		t.Fatal(err)
	}
}

func TestMountAll(t *testing.T) {
	i, k, _ := testInit(t)
	machine(t, i, "testdata/mountinfo")
	if err := i.mountAll(); err != nil {
		t.Fatal(err)
	}
	if err := i.mountLate(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		// /dev/pts is mounted already.
		"mount shm /dev/shm tmpfs 0xe mode=1777", // nosuid,nodev,noexec

		"mount mqueue /dev/mqueue mqueue 0xe ",
		"mount tmpfs /tmp tmpfs 0xe mode=1777",
		"mount cgroup2 /sys/fs/cgroup cgroup2 0xe nsdelegate",
		// /sys/kernel/security does not exist: skipped.
		"mount bpf /sys/fs/bpf bpf 0xe mode=0700",
	}
	if got := k.log(); !slices.Equal(got, want) {
		t.Errorf("kernel calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, d := range []string{"/dev/shm", "/dev/mqueue", "/run/ballast", "/run/ballast/logs"} {
		if fi, err := os.Stat(i.path(d)); err != nil || !fi.IsDir() {
			t.Errorf("%s not created: %v", d, err)
		}
	}
	for link, target := range map[string]string{
		"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
	} {
		if got, err := os.Readlink(i.path(link)); err != nil || got != target {
			t.Errorf("%s → %q, %v; want %s", link, got, err, target)
		}
	}
}

// A second run (a restarted init, or one that finds everything done) changes nothing.
func TestMountAllIdempotent(t *testing.T) {
	i, k, _ := testInit(t)
	machine(t, i, "testdata/mountinfo")
	b, _ := os.ReadFile("testdata/mountinfo")
	done := string(b) +
		"40 21 0:40 / /dev/shm rw - tmpfs shm rw\n" +
		"41 21 0:41 / /dev/mqueue rw - mqueue mqueue rw\n" +
		"42 20 0:42 / /tmp rw - tmpfs tmpfs rw\n" +
		"43 23 0:43 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n" +
		"44 23 0:44 / /sys/fs/bpf rw - bpf bpf rw\n"
	write(t, i, "/proc/self/mountinfo", done)
	for range 2 {
		if err := i.mountAll(); err != nil {
			t.Fatal(err)
		}
	}
	if got := k.log(); len(got) != 0 {
		t.Errorf("kernel calls on a mounted system: %q", got)
	}
}

func TestMountAllReportsAndGoesOn(t *testing.T) {
	i, k, _ := testInit(t)
	machine(t, i, "testdata/mountinfo")
	k.fail["/tmp"] = syscall.EPERM
	k.fail["/sys/fs/bpf"] = syscall.ENODEV // optional and not in the kernel: fine
	err := errors.Join(i.mountAll(), i.mountLate())
	if err == nil || !strings.Contains(err.Error(), "mount /tmp (tmpfs): operation not permitted") {
		t.Errorf("err = %v", err)
	}
	if strings.Contains(err.Error(), "bpf") {
		t.Errorf("optional bpf reported: %v", err)
	}
	if got := k.log(); len(got) != 5 {
		t.Errorf("later mounts skipped after a failure: %q", got)
	}
}

// With a policy loaded, /tmp and /dev/shm are tmp_t from their mount on.
func TestMountAllLabelled(t *testing.T) {
	i, k, _ := testInit(t)
	machine(t, i, "testdata/mountinfo")
	write(t, i, "/sys/fs/selinux/enforce", "1")
	if err := i.mountAll(); err != nil {
		t.Fatal(err)
	}
	got := k.log()
	for _, want := range []string{
		"mount shm /dev/shm tmpfs 0xe mode=1777,rootcontext=system_u:object_r:tmp_t:s0",
		"mount tmpfs /tmp tmpfs 0xe mode=1777,rootcontext=system_u:object_r:tmp_t:s0",
		"mount cgroup2 /sys/fs/cgroup cgroup2 0xe nsdelegate",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("kernel calls lack %q:\n%s", want, strings.Join(got, "\n"))
		}
	}
}
