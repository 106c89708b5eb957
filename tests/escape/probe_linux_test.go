package escape

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/tests/testutil"
)

func TestMain(m *testing.M) {
	// Descriptors this process inherited (a shell's, a CI runner's) would pass on to every probe
	// the tests run and show up as its leaked-fd; the tests decide what the probe inherits.
	for _, fd := range inheritedFDs() {
		unix.CloseOnExec(fd)
	}
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

var build struct {
	once sync.Once
	dir  string
	err  error
}

// probeBinary builds the probe, static, once for all the tests.
func probeBinary(t *testing.T) string {
	t.Helper()
	gobin := testutil.Tool(t, "go", "golang-go, or Go from https://go.dev/dl")
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "ballast-escape-build-")
		if build.err != nil {
			return
		}
		cmd := exec.Command(gobin, "build", "-o", filepath.Join(build.dir, "probe"), "./cmd/probe")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/probe: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return filepath.Join(build.dir, "probe")
}

// probeDir is a directory every user can reach (the setuid vector runs the suid copy as nobody)
// holding the probe and, when root, its setuid-root copy probe-suid.
func probeDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ballast-escape-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(probeBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"probe": 0o755, "probe-suid": 0o755 | os.ModeSetuid} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		// Chmod after writing: the umask does not apply, and the setuid bit is set on the file as
		// it will stay.
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// allBut lists every vector except these, for --skip.
func allBut(keep ...string) string {
	return strings.Join(slices.DeleteFunc(Vectors(), func(v string) bool { return slices.Contains(keep, v) }), ",")
}

// runProbe runs cmd (a probe, maybe behind wrappers), checks it exits 0 and returns its parsed
// report.
func runProbe(t *testing.T, cmd *exec.Cmd) map[string]Result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s (%v):\n%s%s", strings.Join(cmd.Args, " "), time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	res, err := ParseReport(stdout.String())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// expect checks the verdicts: want[v] true is ALLOWED, false BLOCKED. Vectors absent from want
// are not checked; a wanted vector missing from the report is an error.
func expect(t *testing.T, res map[string]Result, want map[string]bool) {
	t.Helper()
	for _, v := range Vectors() {
		w, ok := want[v]
		if !ok {
			continue
		}
		r, ok := res[v]
		switch {
		case !ok:
			t.Errorf("%s: not in the report", v)
		case r.Allowed != w:
			t.Errorf("%s: %s (%s), want %s", v, verdictName(r.Allowed), r.Detail, verdictName(w))
		}
	}
}

func verdictName(allowed bool) string {
	if allowed {
		return statusAllowed
	}
	return statusBlocked
}

// startPeer runs a second probe that only leaves its secret in /tmp (and its storage) and
// sleeps, for other-container-files and peer-storage, or serves as the broker (extra args); it is
// stopped (SIGTERM, which removes the secret) when the test ends.
func startPeer(t *testing.T, probe string, extra ...string) {
	t.Helper()
	cmd := exec.Command(probe, append([]string{"--sleep", "--skip", allBut()}, extra...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("peer probe: %v", err)
		}
		if left, _ := filepath.Glob(fmt.Sprintf("/tmp/%s*-%d", secretPrefix, pid)); len(left) > 0 {
			t.Errorf("peer probe left its secret: %v", left)
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), LinePrefix+"done") {
				ready <- sc.Text()
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("the peer probe did not report within 30 s")
	}
}

// limitCgroup is a memory- and pids-limited cgroup the test makes for a probe, so that the
// exhaustion vectors meet a limit and cgroup-raise writes only to the test's own cgroup.
type limitCgroup struct {
	dirs []string
	// procs are the cgroup.procs files a process joins by writing its pid.
	procs []string
	files map[string]string // limit file -> value the test wrote
}

const (
	testMemoryLimit = 128 << 20
	testPidsLimit   = 96
)

// newLimitCgroup makes the cgroup: cgroup v1's memory and pids hierarchies on a hybrid host, or
// cgroup v2 where the root delegates both controllers. nested puts the limits on a parent and the
// probe in a child without limits of its own: the probe sees none, the kernel still enforces
// them. It returns nil and why when it cannot.
func newLimitCgroup(t *testing.T, mem, pids int64, nested bool) (*limitCgroup, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, "not root"
	}
	mounts := cgroupMounts()
	self := map[string]string{}
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if parts := strings.SplitN(line, ":", 3); len(parts) == 3 {
				for _, c := range strings.Split(parts[1], ",") {
					self[c] = parts[2]
				}
			}
		}
	}
	name := fmt.Sprintf("ballast-escape-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	cg := &limitCgroup{files: map[string]string{}}
	t.Cleanup(func() { cg.remove(t) })
	mk := func(dir string, files map[string]string) string {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err.Error()
		}
		cg.dirs = append(cg.dirs, dir)
		for f, v := range files {
			p := filepath.Join(dir, f)
			if err := os.WriteFile(p, []byte(v), 0); err != nil {
				return err.Error()
			}
			cg.files[p] = v
		}
		if nested {
			dir = filepath.Join(dir, "probe")
			if err := os.Mkdir(dir, 0o755); err != nil {
				return err.Error()
			}
			cg.dirs = append(cg.dirs, dir)
		}
		cg.procs = append(cg.procs, filepath.Join(dir, "cgroup.procs"))
		return ""
	}
	v1 := func(controller string) (string, bool) {
		for _, m := range mounts {
			if !m.v2 && slices.Contains(m.controllers, controller) {
				if p, ok := self[controller]; ok && m.root == "/" {
					return filepath.Join(m.point, p), true
				}
			}
		}
		return "", false
	}
	memDir, memOK := v1("memory")
	pidsDir, pidsOK := v1("pids")
	if memOK && pidsOK {
		if why := mk(filepath.Join(memDir, name), map[string]string{"memory.limit_in_bytes": strconv.FormatInt(mem, 10)}); why != "" {
			return nil, "cgroup v1 memory: " + why
		}
		if why := mk(filepath.Join(pidsDir, name), map[string]string{"pids.max": strconv.FormatInt(pids, 10)}); why != "" {
			return nil, "cgroup v1 pids: " + why
		}
		return cg, ""
	}
	for _, m := range mounts {
		if !m.v2 || m.root != "/" {
			continue
		}
		ctl, err := os.ReadFile(filepath.Join(m.point, "cgroup.subtree_control"))
		if err != nil || !strings.Contains(string(ctl), "memory") || !strings.Contains(string(ctl), "pids") {
			continue
		}
		// The root cgroup may hold processes besides its children; no other cgroup may.
		files := map[string]string{"memory.max": strconv.FormatInt(mem, 10), "pids.max": strconv.FormatInt(pids, 10)}
		if _, err := os.Stat(filepath.Join(m.point, "init.scope", "memory.swap.max")); err == nil {
			files["memory.swap.max"] = "0"
		}
		if nested {
			files["cgroup.subtree_control"] = "+memory +pids"
		}
		if why := mk(filepath.Join(m.point, name), files); why != "" {
			return nil, "cgroup v2: " + why
		}
		return cg, ""
	}
	return nil, "no cgroup v1 memory and pids hierarchies, and no cgroup v2 root delegating memory and pids"
}

// wrap runs args in the cgroup: a shell joins it and execs them.
func (cg *limitCgroup) wrap(args ...string) *exec.Cmd {
	cmd := exec.Command("sh", append([]string{"-c", `for f in $BALLAST_ESCAPE_PROCS; do echo $$ > "$f" || exit 97; done; exec "$@"`, "sh"}, args...)...)
	cmd.Env = append(os.Environ(), "BALLAST_ESCAPE_PROCS="+strings.Join(cg.procs, " "))
	return cmd
}

// checkRestored fails the test when a limit the probe raised was not put back.
func (cg *limitCgroup) checkRestored(t *testing.T) {
	t.Helper()
	for p, v := range cg.files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if got := strings.TrimSpace(string(b)); got != v {
			t.Errorf("%s holds %s after the probe, the test set %s", p, got, v)
		}
	}
}

// remove removes the cgroups; one that still has a task (a sleeper the probe did not kill) is an
// error.
func (cg *limitCgroup) remove(t *testing.T) {
	for i := len(cg.dirs) - 1; i >= 0; i-- {
		var err error
		for try := 0; try < 50; try++ {
			if err = syscall.Rmdir(cg.dirs[i]); err == nil || os.IsNotExist(err) {
				err = nil
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			procs, _ := os.ReadFile(filepath.Join(cg.dirs[i], "cgroup.procs"))
			t.Errorf("remove cgroup %s: %v (tasks left: %q)", cg.dirs[i], err, procs)
		}
	}
}

// mountFlags are the flags of the mount holding path (ST_RDONLY, ST_NOSUID, ...).
func mountFlags(t *testing.T, path string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatalf("statfs %s: %v", path, err)
	}
	return st.Flags
}

// blockDeviceOpens reports whether this process can open any block device in /dev: where even
// root cannot (a device cgroup), the probe cannot either.
func blockDeviceOpens() bool {
	ents, _ := os.ReadDir("/dev")
	for _, e := range ents {
		if e.Type()&os.ModeDevice != 0 && e.Type()&os.ModeCharDevice == 0 {
			if fd, err := unix.Open("/dev/"+e.Name(), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
				unix.Close(fd)
				return true
			}
		}
	}
	return false
}

// privilegedExpectations are the vectors a root probe without isolation must report ALLOWED,
// less those this host cannot show, which are logged with the reason.
func privilegedExpectations(t *testing.T, dir string, cg *limitCgroup, cgWhy string) map[string]bool {
	t.Helper()
	want := map[string]bool{}
	for _, v := range PrivilegedVectors() {
		want[v] = true
	}
	unless := func(v string, cond bool, why string) {
		if cond {
			delete(want, v)
			t.Logf("%s not checked: %s", v, why)
		}
	}
	_, err := os.Stat("/proc/modules")
	unless(VectorKernelModule, err != nil, "the kernel has no module support (no /proc/modules), so even root gets ENOSYS")
	unless(VectorBlockDevice, !blockDeviceOpens(), "the test itself cannot open any block device in /dev")
	unless(VectorProcSysWrite, mountFlags(t, "/proc/sys/kernel")&unix.ST_RDONLY != 0, "/proc/sys is read-only here")
	unless(VectorSysWrite, mountFlags(t, "/sys/kernel")&unix.ST_RDONLY != 0, "/sys is read-only here")
	unless(VectorSetuid, mountFlags(t, dir)&unix.ST_NOSUID != 0, dir+" is on a nosuid mount")
	unless(VectorCgroupRaise, cg == nil, "no test cgroup: "+cgWhy)
	for _, v := range []string{VectorLocalWrite, VectorPeerStorage} {
		unless(v, true, "no broker here: TestProbeWithBroker has one")
	}
	return want
}

// TestProbeOnHostAllowsPrivileged runs the probe as root on this host, which isolates nothing:
// every check the host can show must report ALLOWED, which proves the checks can go red. The
// exhaustion vectors run in a limited cgroup the test makes, where they must be BLOCKED.
func TestProbeOnHostAllowsPrivileged(t *testing.T) {
	testutil.Root(t, "the privileged checks (mount, mknod, raw sockets, setuid) can only succeed as root")
	dir := probeDir(t)
	probe := filepath.Join(dir, "probe")
	startPeer(t, probe)
	cg, cgWhy := newLimitCgroup(t, testMemoryLimit, testPidsLimit, false)
	want := privilegedExpectations(t, dir, cg, cgWhy)
	// Here the host's sockets and pid 1's root are this host's own; TestProbeInPrivilegedRoot has
	// them.
	for _, v := range []string{VectorAPISocket, VectorContainerdSocket, VectorProc1Root} {
		delete(want, v)
	}
	skip := []string{VectorAPISocket, VectorContainerdSocket}
	var cmd *exec.Cmd
	if cg != nil {
		want[VectorMemoryExhaust], want[VectorPidsExhaust] = false, false
	} else {
		// Not on the test's own cgroup: those limits are the host's, not the test's.
		t.Logf("memory-exhaust, pids-exhaust and cgroup-raise skipped: no test cgroup: %s", cgWhy)
		skip = append(skip, VectorMemoryExhaust, VectorPidsExhaust, VectorCgroupRaise)
	}
	args := []string{probe, "--suid", filepath.Join(dir, "probe-suid"), "--skip", strings.Join(skip, ",")}
	if cg != nil {
		cmd = cg.wrap(args...)
	} else {
		cmd = exec.Command(args[0], args[1:]...)
	}
	res := runProbe(t, cmd)
	expect(t, res, want)
	if cg != nil {
		cg.checkRestored(t)
	}
	pid := cmd.Process.Pid
	if left, _ := filepath.Glob(fmt.Sprintf("/tmp/%s*-%d", secretPrefix, pid)); len(left) > 0 {
		t.Errorf("the probe left its secret: %v", left)
	}
	if _, err := os.Lstat(fmt.Sprintf("%s/.ballast-probe-mknod-%d", os.TempDir(), pid)); err == nil {
		t.Errorf("the probe left its device node")
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(mi, []byte("ballast-probe-mount-")) {
		t.Errorf("the probe left its tmpfs mounted")
	}
}

// TestProbeInPrivilegedRoot runs the probe the way a superpowered container runs: root with every
// capability, in its own root directory (a chroot in a mount namespace) with the host's root at
// /.ballast/rootfs, the host's devices and sysfs, and a host API and containerd socket (the
// test's listeners). It differs in one way: a pid namespace whose PID 1 is a shell outside the
// chroot stands in for the host's init, which here refuses even root its /proc/1/root. A
// directory descriptor is leaked into it from the test's mount namespace. Every privileged vector
// the host can show must be ALLOWED, and leaked-fd too.
func TestProbeInPrivilegedRoot(t *testing.T) {
	testutil.Root(t, "mount namespaces, chroot and the privileged checks need root")
	unshare := testutil.Tool(t, "unshare", "util-linux")
	testutil.Tool(t, "chroot", "coreutils")
	dir := probeDir(t)
	startPeer(t, filepath.Join(dir, "probe"))
	root := filepath.Join(dir, "root")
	for _, d := range []string{"proc", "sys", "dev", "tmp", "run", strings.TrimPrefix(HostRootfs, "/")} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"probe", "probe-suid"} {
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	sockets := map[string]string{}
	for _, name := range []string{"api", "containerd"} {
		p := filepath.Join(dir, name+".sock")
		l, err := net.Listen("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		sockets[name] = p
	}
	leak, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer leak.Close()

	// PID 1 of the new pid namespace: it prepares the root and stays outside it while the probe
	// runs.
	script := `set -e
R=$1; shift
mount --rbind / "$R` + HostRootfs + `"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount --rbind /dev "$R/dev"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
mount -t tmpfs -o mode=755 tmpfs "$R/run"
mkdir -p "$R/run/containerd"
touch "$R/run/api.sock" "$R/run/containerd/containerd.sock"
mount --bind "$BALLAST_ESCAPE_API" "$R/run/api.sock"
mount --bind "$BALLAST_ESCAPE_CONTAINERD" "$R/run/containerd/containerd.sock"
chroot "$R" /probe "$@"`
	cg, cgWhy := newLimitCgroup(t, testMemoryLimit, testPidsLimit, false)
	skip := []string{VectorMemoryExhaust, VectorPidsExhaust}
	if cg == nil {
		skip = append(skip, VectorCgroupRaise)
	}
	args := []string{unshare, "--mount", "--propagation", "private", "--pid", "--fork", "sh", "-c", script, "sh", root,
		"--suid", "/probe-suid", "--skip", strings.Join(skip, ",")}
	var cmd *exec.Cmd
	if cg != nil {
		cmd = cg.wrap(args...)
	} else {
		cmd = exec.Command(args[0], args[1:]...)
	}
	cmd.Env = append(cmd.Environ(), "BALLAST_ESCAPE_API="+sockets["api"], "BALLAST_ESCAPE_CONTAINERD="+sockets["containerd"])
	cmd.ExtraFiles = []*os.File{leak}
	want := privilegedExpectations(t, root, cg, cgWhy)
	want[VectorLeakedFD] = true
	res := runProbe(t, cmd)
	expect(t, res, want)
	if cg != nil {
		cg.checkRestored(t)
	}
}

// TestProbeInNamespaces runs the probe as an unprivileged user in new user, pid, mount and
// network namespaces: root inside, nobody outside. What reaches the host must be BLOCKED, where
// the tests above found it ALLOWED.
func TestProbeInNamespaces(t *testing.T) {
	unshare := testutil.Tool(t, "unshare", "util-linux")
	dir := probeDir(t)
	args := []string{unshare, "--user", "--map-root-user", "--pid", "--fork", "--mount", "--mount-proc", "--net", "--",
		filepath.Join(dir, "probe"), "--skip", strings.Join([]string{VectorSetuid, VectorMemoryExhaust, VectorPidsExhaust}, ",")}
	if os.Geteuid() == 0 {
		setpriv := testutil.Tool(t, "setpriv", "util-linux")
		args = append([]string{setpriv, "--reuid", strconv.Itoa(nobody), "--regid", strconv.Itoa(nobody), "--clear-groups"}, args...)
	}
	try := exec.Command(args[0], append(slices.Clone(args[1:len(args)-3]), "true")...)
	out, err := try.CombinedOutput()
	testutil.Need(t, err == nil, "unprivileged user namespaces: %v: %s", err, out)

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = "/"
	res := runProbe(t, cmd)
	// mount, raw-socket and ptrace stay ALLOWED: root of a user namespace owns its mount and
	// network namespaces and its children, which is no way out.
	expect(t, res, map[string]bool{
		VectorHostProcesses: false, VectorKernelModule: false, VectorProcSysWrite: false, VectorSysWrite: false,
		VectorBlockDevice: false, VectorMknod: false, VectorAPISocket: false, VectorContainerdSocket: false,
		VectorOtherContainerFiles: false, VectorCgroupRaise: false, VectorProc1Root: false, VectorLeakedFD: false,
		// No selinuxfs to reach, and no broker in a network namespace of its own.
		VectorSELinuxOff: false, VectorLocalWrite: false, VectorPeerStorage: false,
	})
}

// A missing setuid binary is the suite's setup error, not a blocked vector: the probe says ERROR
// and ParseReport fails.
func TestProbeSetuidMissing(t *testing.T) {
	cmd := exec.Command(probeBinary(t), "--suid", filepath.Join(t.TempDir(), "absent"), "--skip", allBut(VectorSetuid))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), LinePrefix+"setuid ERROR no setuid binary") {
		t.Errorf("report:\n%s\nwant a setuid ERROR line", out)
	}
	if _, err := ParseReport(string(out)); err == nil || !strings.Contains(err.Error(), "setuid") {
		t.Errorf("ParseReport: %v, want an error naming setuid", err)
	}

	// A binary without the setuid bit is no test of it either.
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, _ = exec.Command(probeBinary(t), "--suid", plain, "--skip", allBut(VectorSetuid)).Output()
	if !strings.Contains(string(out), "setuid ERROR "+plain+" is not setuid root") {
		t.Errorf("report:\n%s\nwant a setuid ERROR line for a binary without the bit", out)
	}
}

func TestProbeUsage(t *testing.T) {
	for _, args := range [][]string{{"--skip", "mount,teleport"}, {"extra"}, {"--nope"}} {
		cmd := exec.Command(probeBinary(t), args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("probe %v: %v, want exit status 2", args, err)
		}
		if len(out) > 0 || stderr.Len() == 0 {
			t.Errorf("probe %v: stdout %q, stderr %q; want only a usage error", args, out, stderr.String())
		}
	}
}

// TestProbeExhaustWithoutLimit shows the exhaustion vectors going red: in a cgroup without limits
// of its own, the allocator gets its 1 GiB and memory-exhaust is ALLOWED. The limits sit on the
// parent cgroup, so the host is safe all the same: there the pids limit refuses the forker, and
// pids-exhaust, which looks for any refusal, is BLOCKED.
func TestProbeExhaustWithoutLimit(t *testing.T) {
	testutil.Root(t, "cgroups")
	cg, why := newLimitCgroup(t, noMemoryLimitCap+256<<20, testPidsLimit, true)
	testutil.Need(t, cg != nil, "a test cgroup: %s", why)
	res := runProbe(t, cg.wrap(probeBinary(t), "--skip", allBut(VectorMemoryExhaust, VectorPidsExhaust)))
	expect(t, res, map[string]bool{VectorMemoryExhaust: true, VectorPidsExhaust: false})
	for v, want := range map[string]string{VectorMemoryExhaust: "1024 MiB with no memory limit", VectorPidsExhaust: "no pids limit"} {
		if !strings.Contains(res[v].Detail, want) {
			t.Errorf("%s: %q, want it to mention %q", v, res[v].Detail, want)
		}
	}
}

// The kernel here may have no module support at all; the verdict is checked on the errors each
// kind of kernel and container gives.
func TestKernelModuleVerdict(t *testing.T) {
	for _, tc := range []struct {
		name         string
		del, finit   error
		modules      bool
		allowed      bool
		detailSuffix string
	}{
		{"root on the host", unix.ENOENT, unix.EBADF, true, true, "(past the permission check)"},
		{"unload only", unix.ENOENT, unix.EPERM, true, true, "(past the permission check)"},
		{"no CAP_SYS_MODULE", unix.EPERM, unix.EPERM, true, false, "finit_module(-1): EPERM"},
		{"seccomp ENOSYS", unix.ENOSYS, unix.ENOSYS, true, false, "finit_module(-1): ENOSYS"},
		{"no module support", unix.ENOSYS, unix.ENOSYS, false, false, "no /proc/modules)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vd := kernelModuleVerdict(tc.del, tc.finit, tc.modules)
			if (vd.status == statusAllowed) != tc.allowed || !strings.HasSuffix(vd.detail, tc.detailSuffix) {
				t.Errorf("%s %s, want allowed=%v and a detail ending %q", vd.status, vd.detail, tc.allowed, tc.detailSuffix)
			}
		})
	}
}
