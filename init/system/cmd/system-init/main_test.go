package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/testutil"
)

// The namespace test boots the system init as PID 1 of new pid, mount, uts, ipc and cgroup
// namespaces, chrooted into a small root, so the PID 1 code paths run without a VM: signal
// handling, reaping, services, the ready line, shutdown and reboot(2) (which in a pid
// namespace ends the namespace with a signal instead of the machine).

const nsScript = `set -e
R="$1"
mount -t tmpfs -o mode=755 dev "$R/dev"
mknod -m 666 "$R/dev/null" c 1 3
mknod -m 666 "$R/dev/zero" c 1 5
mknod -m 666 "$R/dev/urandom" c 1 9
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
# Keep the init off the machine's cgroup2 hierarchy: it skips what is mounted already.
mount -t tmpfs cgroup "$R/sys/fs/cgroup"
mount -t tmpfs -o mode=755 run "$R/run"
mount -t tmpfs local "$R/local"
mkdir -p "$R/local/var"
mount --bind "$R/local/var" "$R/var"
mount -t tmpfs etc "$R/etc"
exec chroot "$R" /usr/sbin/init
`

func needNamespaces(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots the init in namespaces")
	}
	testutil.Root(t, "namespaces and mounts")
	for tool, pkg := range map[string]string{"unshare": "util-linux", "chroot": "coreutils", "mount": "mount", "mknod": "coreutils", "go": "golang-go, or Go from https://go.dev/dl"} {
		testutil.Tool(t, tool, pkg)
	}
	out, err := exec.Command("unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--cgroup", "true").CombinedOutput()
	testutil.Need(t, err == nil, "pid, mount, uts, ipc and cgroup namespaces: unshare: %v %s", err, out)
}

func build(t *testing.T, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// makeRoot lays out a root like the image's, with the fake apiserver.
func makeRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"usr/sbin", "usr/bin", "usr/lib/ballast", "dev", "proc", "sys", "run", "tmp", "local", "etc", "var"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build(t, filepath.Join(root, "usr/sbin/init"), ".")
	build(t, filepath.Join(root, "usr/bin/apiserver"), "./testdata/fakeapiserver")
	files := map[string]string{
		"usr/lib/ballast/image.json": `{"variant":"qemu","version":"0.1.0","dev":false,"services":["apiserver"],"modules":[]}`,
		"usr/lib/os-release":         "ID=ballast\nVERSION_ID=0.1.0\nVARIANT_ID=qemu\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func waitFor(t *testing.T, out *testutil.Buffer, text string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("console never showed %q:\n%s", text, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// children returns the processes whose parent is pid, with their states, from /proc.
func children(t *testing.T, pid int) map[int]string {
	t.Helper()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	testutil.Need(t, len(tasks) > 0, "/proc/PID/task/TID/children (a kernel with CONFIG_PROC_CHILDREN)")
	out := map[int]string{}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, c := range strings.Fields(string(b)) {
			var child int
			fmt.Sscan(c, &child)
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
			if err != nil {
				continue
			}
			// pid (comm) state ...
			s := string(stat)
			if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
				out[child] = s[i+2 : i+3]
			}
		}
	}
	return out
}

func TestBootAsPID1InNamespaces(t *testing.T) {
	needNamespaces(t)
	root := makeRoot(t)
	script := filepath.Join(t.TempDir(), "ns.sh")
	if err := os.WriteFile(script, []byte(nsScript), 0o755); err != nil {
		t.Fatal(err)
	}
	out := &testutil.Buffer{}
	cmd := exec.Command("unshare", "--pid", "--fork", "--kill-child", "--mount", "--uts", "--ipc", "--cgroup",
		"--propagation", "private", "/bin/sh", script, root)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// done is closed once the namespace has ended; waitErr is then how.
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			// --kill-child takes the namespace's init down with unshare.
			cmd.Process.Kill()
			<-done
		}
	})

	waitFor(t, out, "ballast: ready version=0.1.0 variant=qemu slot=")
	waitFor(t, out, "Welcome to the namespace test\n")

	// The init is unshare's only child; it runs as PID 1 of the namespace.
	kids := children(t, cmd.Process.Pid)
	if len(kids) != 1 {
		t.Fatalf("unshare's children: %v", kids)
	}
	var initPid int
	for p := range kids {
		initPid = p
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", initPid))
	if err != nil || !strings.Contains(string(status), "NSpid:\t"+fmt.Sprint(initPid)+"\t1\n") {
		t.Fatalf("init is not PID 1 of its namespace:\n%s", status)
	}

	// The apiserver's orphan sleeps 200 ms; then only the apiserver is left, and no zombie.
	time.Sleep(time.Second)
	left := children(t, initPid)
	for p, st := range left {
		if st == "Z" {
			t.Errorf("zombie %d under PID 1", p)
		}
	}
	if len(left) != 1 {
		t.Errorf("PID 1's children: %v, want the apiserver only", left)
	}

	// A signal PID 1 does not act on must not end it.
	if err := syscall.Kill(initPid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "ballast: signal ignoring SIGHUP")

	// busybox poweroff sends SIGUSR2.
	if err := syscall.Kill(initPid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		err = waitErr
	case <-time.After(30 * time.Second):
		t.Fatalf("no power off:\n%s", out)
	}
	// reboot(2) with POWER_OFF in a pid namespace ends its init with SIGINT.
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
		t.Errorf("namespace ended with %v, want SIGINT from reboot(2)", err)
	}
	console := out.String()
	shut := strings.Index(console, "ballast: shutdown power off (SIGUSR2)\n")
	stopped := strings.Index(console, "ballast: service apiserver stopped\n")
	off := strings.Index(console, "ballast: power off\n")
	if shut < 0 || stopped < shut || off < stopped {
		t.Errorf("shutdown lines missing or out of order:\n%s", console)
	}
	if n := strings.Count(console, "ballast: ready "); n != 1 {
		t.Errorf("%d ready lines", n)
	}
}
