package escape

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
)

// prober holds what the checks share.
type prober struct {
	opts      options
	inherited []int
	self      int
	selfComm  string
	// secretPath is this probe's own secret for other-container-files; secret is its content.
	secretPath, secret string
	secretErr          error
	// storageSecret is the same secret in the container's storage, for peer-storage.
	storageSecret string
	// brokerMissed: no broker answered within the peer wait; later requests do not wait again.
	brokerMissed bool
}

// secretPrefix starts the name of every probe's secret file, in its container's /tmp.
const secretPrefix = "ballast-probe-secret-"

// nobody is the unprivileged user the setuid vector runs as.
const nobody = 65534

func newProber(opts options, inherited []int) *prober {
	p := &prober{opts: opts, inherited: inherited, self: os.Getpid(), selfComm: readComm("self")}
	p.writeSecret()
	return p
}

func (p *prober) checks() map[string]func() verdict {
	return map[string]func() verdict{
		VectorHostProcesses:       p.hostProcesses,
		VectorMount:               checkMount,
		VectorRawSocket:           checkRawSocket,
		VectorKernelModule:        checkKernelModule,
		VectorPtrace:              p.ptrace,
		VectorProcSysWrite:        checkProcSysWrite,
		VectorSysWrite:            checkSysWrite,
		VectorBlockDevice:         checkBlockDevice,
		VectorMknod:               checkMknod,
		VectorAPISocket:           func() verdict { return dialAny(contract.APISocket, HostRootfs+contract.APISocket) },
		VectorContainerdSocket:    func() verdict { return dialAny(contract.ContainerdSocket, HostRootfs+contract.ContainerdSocket) },
		VectorOtherContainerFiles: p.otherContainerFiles,
		VectorSELinuxOff:          p.selinuxOff,
		VectorLocalWrite:          p.localWrite,
		VectorPeerStorage:         p.peerStorage,
		VectorSetuid:              p.setuid,
		VectorCgroupRaise:         checkCgroupRaise,
		VectorProc1Root:           checkProc1Root,
		VectorLeakedFD:            p.leakedFD,
		VectorMemoryExhaust:       checkMemoryExhaust,
		VectorPidsExhaust:         checkPidsExhaust,
	}
}

// readComm is a process's command name ("self" or a pid), empty when it cannot be read.
func readComm(pid string) string {
	b, err := os.ReadFile("/proc/" + pid + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// pfKthread is PF_KTHREAD in /proc/<pid>/stat's flags: a kernel thread, which only the initial
// pid namespace sees.
const pfKthread = 0x00200000

// statFlags reads the flags field of /proc/<pid>/stat.
func statFlags(pid int) (uint64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name in parentheses may hold spaces; the fields follow its last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 7 {
		return 0, false
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return flags, err == nil
}

// hostComms are the command names of the host's own processes, which no container runs: the
// services of the program table (the system init's comm is its file's name, "init") and the
// container runtime's (containerd-shim-runc-v2 cut to the kernel's 15 characters).
func hostComms() map[string]bool {
	m := map[string]bool{"containerd-shim": true, "runc": true}
	for _, prog := range contract.Programs() {
		if prog.Service == nil || prog.Service.Console || prog.Initramfs {
			continue
		}
		name := filepath.Base(prog.Path)
		if len(name) > 15 {
			name = name[:15]
		}
		m[name] = true
	}
	return m
}

// hostProcesses looks for a process that is not the container's: a kernel thread, a host
// service, one in another mount namespace, or a PID 1 that is not the probe. With its own pid
// namespace the probe sees only itself (it is its container's init).
func (p *prober) hostProcesses() verdict {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return failed("read /proc: %v", err)
	}
	host := hostComms()
	selfMnt, _ := os.Readlink("/proc/self/ns/mnt")
	var evidence []string
	if p.self != 1 {
		if c := readComm("1"); c != "" && c != p.selfComm {
			evidence = append(evidence, fmt.Sprintf("pid 1 is %s, not the probe", c))
		}
	}
	visible, kthreads := 0, 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		visible++
		if pid == p.self {
			continue
		}
		comm := readComm(e.Name())
		if flags, ok := statFlags(pid); ok && flags&pfKthread != 0 {
			if kthreads++; kthreads == 1 {
				evidence = append(evidence, fmt.Sprintf("kernel thread %s (pid %d)", comm, pid))
			}
			continue
		}
		if host[comm] {
			evidence = append(evidence, fmt.Sprintf("host program %s (pid %d)", comm, pid))
			continue
		}
		if mnt, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); err == nil && selfMnt != "" && mnt != selfMnt {
			evidence = append(evidence, fmt.Sprintf("%s (pid %d) in another mount namespace", comm, pid))
		}
	}
	if len(evidence) == 0 {
		return blocked("%d processes visible, all the container's (probe is pid %d)", visible, p.self)
	}
	if len(evidence) > 4 {
		evidence = append(evidence[:4], fmt.Sprintf("%d more", len(evidence)-4))
	}
	return allowed("%d processes visible (%d kernel threads): %s", visible, kthreads, strings.Join(evidence, "; "))
}

// scratchDirs are where the probe tries to make a file or directory of its own: the container's
// /tmp first, then other places a container may be able to write.
func scratchDirs() []string {
	return []string{os.TempDir(), "/dev/shm", "/run", "/var/tmp"}
}

func checkMount() verdict {
	var notes []string
	for _, d := range scratchDirs() {
		dir, err := os.MkdirTemp(d, "ballast-probe-mount-")
		if err != nil {
			notes = append(notes, fmt.Sprintf("mkdir in %s: %s", d, errText(err)))
			continue
		}
		defer os.Remove(dir)
		err = unix.Mount("ballast-probe", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=64k,mode=0700")
		if err != nil {
			return blocked("mount tmpfs on %s: %s", dir, errText(err))
		}
		undo := "unmounted"
		if err := unix.Unmount(dir, 0); err != nil {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				undo = "unmount failed: " + errText(err)
			}
		}
		return allowed("mounted a tmpfs on %s (%s)", dir, undo)
	}
	return failed("no directory to mount on: %s", strings.Join(notes, "; "))
}

func checkRawSocket() verdict {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return blocked("socket(AF_INET, SOCK_RAW, IPPROTO_ICMP): %s", errText(err))
	}
	unix.Close(fd)
	return allowed("socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) opened (closed)")
}

// checkKernelModule asks the kernel to unload a module that does not exist and to load one from
// no file: neither can do anything, but each fails differently before and after the kernel's
// CAP_SYS_MODULE check (ENOENT and EBADF mean the check passed).
func checkKernelModule() verdict {
	_, err := os.Stat("/proc/modules")
	return kernelModuleVerdict(unix.DeleteModule("ballast_probe_nonexistent", unix.O_NONBLOCK), unix.FinitModule(-1, "", 0), err == nil)
}

// kernelModuleVerdict judges the two calls' errors; modules says whether the kernel has module
// support at all.
func kernelModuleVerdict(delErr, finitErr error, modules bool) verdict {
	detail := fmt.Sprintf("delete_module(ballast_probe_nonexistent): %s; finit_module(-1): %s", errOrOK(delErr), errOrOK(finitErr))
	if errors.Is(delErr, unix.ENOENT) || errors.Is(finitErr, unix.EBADF) {
		return allowed("%s (past the permission check)", detail)
	}
	if errors.Is(delErr, unix.ENOSYS) && !modules {
		detail += " (the kernel has no module support: no /proc/modules)"
	}
	return blocked("%s", detail)
}

func errOrOK(err error) string {
	if err == nil {
		return "succeeded"
	}
	return errText(err)
}

// ptrace seizes a sleeping child of the probe's, and PID 1 when that is not the probe.
// PTRACE_SEIZE does not stop the tracee; the tracing thread then ends, and the kernel detaches
// its tracees as it goes, so neither is left traced or stopped.
func (p *prober) ptrace() verdict {
	child, err := startSleeper()
	if err != nil {
		return failed("start a child to trace: %v", err)
	}
	defer stopChild(child)
	type attempt struct {
		who string
		err error
	}
	done := make(chan []attempt, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine.
		runtime.LockOSThread()
		res := []attempt{{fmt.Sprintf("child pid %d", child.Process.Pid), unix.PtraceSeize(child.Process.Pid)}}
		if p.self != 1 {
			res = append(res, attempt{"pid 1 (" + readComm("1") + ")", unix.PtraceSeize(1)})
		}
		done <- res
	}()
	res := <-done
	var notes []string
	ok := false
	for _, a := range res {
		notes = append(notes, fmt.Sprintf("PTRACE_SEIZE %s: %s", a.who, errOrOK(a.err)))
		ok = ok || a.err == nil
	}
	if ok {
		return allowed("%s (detached)", strings.Join(notes, "; "))
	}
	return blocked("%s", strings.Join(notes, "; "))
}

// openForWrite opens each path for writing, without writing, and closes it: the first that
// opens is returned; notes say why the others did not.
func openForWrite(paths []string) (string, []string) {
	var notes []string
	for _, path := range paths {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err != nil {
			notes = append(notes, path+": "+errText(err))
			continue
		}
		unix.Close(fd)
		return path, notes
	}
	return "", notes
}

// checkProcSysWrite opens core_pattern (the classic way out: the kernel runs it as root on the
// host) and domainname for writing. Linux decides at the open; a kernel that decides at the write
// (gVisor's sentry, whose files refuse writes they do not implement, while its root passes the
// mode check at the open) is asked by writing domainname its own value back: the container's
// own UTS namespace's name, so the write changes nothing even where it is allowed.
func checkProcSysWrite() verdict {
	const core, domain = "/proc/sys/kernel/core_pattern", "/proc/sys/kernel/domainname"
	ok, notes := openForWrite([]string{core, domain})
	switch ok {
	case "":
		return blocked("%s", strings.Join(notes, "; "))
	case core:
		return allowed("opened %s for writing (nothing written)", ok)
	}
	cur, err := os.ReadFile(domain)
	if err != nil {
		return failed("opened %s for writing, then could not read it: %s", domain, errText(err))
	}
	fd, err := unix.Open(domain, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return blocked("%s; %s opened for writing once, then: %s", strings.Join(notes, "; "), domain, errText(err))
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, cur); err != nil {
		return blocked("%s; %s opens for writing, the write of its own value %q is refused: %s", strings.Join(notes, "; "), domain, strings.TrimSpace(string(cur)), errText(err))
	}
	return allowed("wrote %s its own value %q back", domain, strings.TrimSpace(string(cur)))
}

// checkSysWrite opens a sysfs attribute for writing: uevent_helper (a program the kernel runs
// as root) where the kernel has it, else other attributes root may write. A sysfs without any
// (gVisor's) counts as blocked only when it is mounted read-only, so that nothing could be
// written there either.
func checkSysWrite() verdict {
	cands := []string{"/sys/kernel/uevent_helper", "/sys/kernel/mm/transparent_hugepage/enabled", "/sys/kernel/mm/ksm/run", "/sys/power/state", "/sys/kernel/profiling"}
	var present []string
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			present = append(present, c)
		}
	}
	if len(present) == 0 {
		present = writableLooking("/sys/kernel", 3, 3)
	}
	if len(present) == 0 {
		var st unix.Statfs_t
		if err := unix.Statfs("/sys", &st); err == nil && st.Flags&unix.ST_RDONLY != 0 {
			return blocked("no sysfs attribute with an owner-write bit under /sys/kernel, and /sys is mounted read-only")
		}
		return failed("no sysfs attribute with an owner-write bit found under /sys/kernel")
	}
	ok, notes := openForWrite(present)
	if ok != "" {
		return allowed("opened %s for writing (nothing written)", ok)
	}
	return blocked("%s", strings.Join(notes, "; "))
}

// writableLooking finds up to max regular files under root, at most depth levels down, whose
// mode lets their owner write them.
func writableLooking(root string, depth, max int) []string {
	var found []string
	base := strings.Count(root, "/")
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || len(found) >= max {
			if d != nil && d.IsDir() && path != root {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if strings.Count(path, "/")-base >= depth || slices.Contains([]string{"debug", "tracing", "security"}, d.Name()) {
				return fs.SkipDir
			}
			return nil
		}
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o200 != 0 {
			found = append(found, path)
		}
		return nil
	})
	return found
}

// checkBlockDevice opens, read-only, the block devices /sys/block names and any block node in
// /dev.
func checkBlockDevice() verdict {
	var cands, sysNames []string
	if ents, err := os.ReadDir("/sys/block"); err == nil {
		for _, e := range ents {
			sysNames = append(sysNames, e.Name())
			cands = append(cands, "/dev/"+e.Name())
		}
	}
	if ents, err := os.ReadDir("/dev"); err == nil {
		for _, e := range ents {
			if t := e.Type(); t&fs.ModeDevice != 0 && t&fs.ModeCharDevice == 0 {
				cands = append(cands, "/dev/"+e.Name())
			}
		}
	}
	// Disks first: they are what the vector is about, and the detail should name one.
	virtual := func(c string) bool {
		for _, v := range []string{"/dev/loop", "/dev/ram", "/dev/zram", "/dev/nbd"} {
			if strings.HasPrefix(c, v) {
				return true
			}
		}
		return false
	}
	slices.SortFunc(cands, func(a, b string) int {
		if va, vb := virtual(a), virtual(b); va != vb {
			if va {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	cands = slices.Compact(cands)
	var notes []string
	nodes := 0
	for _, c := range cands {
		st, err := os.Stat(c)
		if err != nil {
			continue
		}
		if st.Mode()&fs.ModeDevice == 0 || st.Mode()&fs.ModeCharDevice != 0 {
			continue
		}
		nodes++
		fd, err := unix.Open(c, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			if len(notes) < 4 {
				notes = append(notes, c+": "+errText(err))
			}
			continue
		}
		unix.Close(fd)
		if len(notes) > 0 {
			return allowed("opened block device %s read-only (%s)", c, strings.Join(notes, "; "))
		}
		return allowed("opened block device %s read-only", c)
	}
	if nodes == 0 {
		return blocked("no block device node in /dev (/sys/block lists %d: %s)", len(sysNames), strings.Join(first(sysNames, 6), " "))
	}
	return blocked("%d block device nodes, none opens: %s", nodes, strings.Join(notes, "; "))
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), "...")
	}
	return s
}

// checkMknod makes /dev/null's twin (character device 1:3) where the container can write, then
// removes it. Making the node needs CAP_MKNOD; whether it also opens (nodev) is in the detail.
func checkMknod() verdict {
	dirs := append(scratchDirs(), "/dev", "/")
	var notes []string
	for _, d := range dirs {
		path := filepath.Join(d, fmt.Sprintf(".ballast-probe-mknod-%d", os.Getpid()))
		err := unix.Mknod(path, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3)))
		if err != nil {
			notes = append(notes, d+": "+errText(err))
			continue
		}
		use := "opens"
		if fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			use = "does not open: " + errText(err)
		} else {
			unix.Close(fd)
		}
		if err := os.Remove(path); err != nil {
			use += "; remove failed: " + errText(err)
		}
		return allowed("mknod c 1:3 %s succeeded, node %s (removed)", path, use)
	}
	return blocked("mknod c 1:3: %s", strings.Join(notes, "; "))
}

// dialAny connects to each Unix socket and hangs up.
func dialAny(paths ...string) verdict {
	var notes []string
	for _, path := range paths {
		c, err := net.DialTimeout("unix", path, 2*time.Second)
		if err != nil {
			notes = append(notes, path+": "+errText(err))
			continue
		}
		c.Close()
		return allowed("connected to %s", path)
	}
	return blocked("%s", strings.Join(notes, "; "))
}

// writeSecret leaves this probe's secret in its container's /tmp for another probe to find. The
// content carries a random token, so the probe tells its own file from a peer's even when both
// have the same name (pid 1 in two containers with one host name).
func (p *prober) writeSecret() {
	host, _ := os.Hostname()
	var nonce [16]byte
	rand.Read(nonce[:])
	p.secret = "ballast-probe-secret " + hex.EncodeToString(nonce[:]) + "\n"
	p.secretPath = filepath.Join("/tmp", fmt.Sprintf("%s%s-%d", secretPrefix, host, p.self))
	// A superpowered container's image may lack /tmp (only other containers get a tmpfs there);
	// its root is writable.
	if os.Mkdir("/tmp", 0o755) == nil {
		os.Chmod("/tmp", 0o777|os.ModeSticky)
	}
	if err := os.WriteFile(p.secretPath, []byte(p.secret), 0o600); err != nil {
		p.secretErr = err
		p.secretPath = ""
	}
	// In the container's storage as well, for a peer's peer-storage; a container without storage
	// (a bootstrap container, a developer's host) has no such directory.
	if p.opts.Storage != "" {
		if st, err := os.Stat(p.opts.Storage); err == nil && st.IsDir() {
			path := filepath.Join(p.opts.Storage, fmt.Sprintf("%s%s-%d", secretPrefix, host, p.self))
			if os.WriteFile(path, []byte(p.secret), 0o600) == nil {
				p.storageSecret = path
			}
		}
	}
}

func (p *prober) removeSecret() {
	for _, path := range []string{p.secretPath, p.storageSecret} {
		if path != "" {
			os.Remove(path)
		}
	}
}

// secretGlobs are where another container's /tmp shows: through its processes' roots, from
// the host's /proc and containerd's task directories when the host's root is mounted.
func secretGlobs() []string {
	return []string{
		"/proc/*/root/tmp/" + secretPrefix + "*",
		HostRootfs + "/proc/*/root/tmp/" + secretPrefix + "*",
		HostRootfs + "/run/containerd/io.containerd.runtime.v2.task/*/*/rootfs/tmp/" + secretPrefix + "*",
	}
}

// otherContainerFiles looks for another probe's secret. Alone, the probe finds only its own.
func (p *prober) otherContainerFiles() verdict {
	deadline := time.Now().Add(p.opts.PeerWait)
	for {
		seen, unreadable := 0, 0
		for _, g := range secretGlobs() {
			matches, _ := filepath.Glob(g)
			for _, m := range matches {
				seen++
				b, err := readSmall(m)
				if err != nil {
					unreadable++
					continue
				}
				if s := string(b); strings.HasPrefix(s, "ballast-probe-secret ") && s != p.secret {
					return allowed("read another probe's secret %s", m)
				}
			}
		}
		if time.Now().After(deadline) {
			own := "own secret " + p.secretPath
			if p.secretErr != nil {
				own = "own secret not written: " + errText(p.secretErr)
			}
			return blocked("no other probe's secret readable (%d paths to secrets seen, its own included, %d unreadable; %s; needs a second probe running)", seen, unreadable, own)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 256)
	n, err := f.Read(b)
	if n == 0 && err != nil {
		return nil, err
	}
	return b[:n], nil
}

// setuid runs the setuid-root binary as nobody: euid 0 means exec raised the privileges.
func (p *prober) setuid() verdict {
	st, err := os.Stat(p.opts.Suid)
	if err != nil {
		return failed("no setuid binary: %v", err)
	}
	sys, _ := st.Sys().(*syscall.Stat_t)
	if st.Mode()&fs.ModeSetuid == 0 || sys == nil || sys.Uid != 0 {
		uid := -1
		if sys != nil {
			uid = int(sys.Uid)
		}
		return failed("%s is not setuid root (mode %v, owner %d)", p.opts.Suid, st.Mode(), uid)
	}
	cmd := exec.Command(p.opts.Suid, "--whoami")
	as := fmt.Sprintf("uid %d", os.Getuid())
	if os.Getuid() == 0 {
		cred := &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}
		// In a user namespace whose setgroups is denied, setgroups would fail the start.
		if b, err := os.ReadFile("/proc/self/setgroups"); err == nil && strings.TrimSpace(string(b)) == "deny" {
			cred.NoSetGroups = true
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		as = fmt.Sprintf("uid %d", nobody)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return failed("run %s --whoami as %s: %v %s", p.opts.Suid, as, err, stderr.String())
	}
	euid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return failed("%s --whoami printed %q", p.opts.Suid, out)
	}
	if euid == 0 {
		return allowed("%s run as %s has euid 0", p.opts.Suid, as)
	}
	return blocked("%s run as %s has euid %d (NoNewPrivs %s)", p.opts.Suid, as, euid, statusField("NoNewPrivs"))
}

// statusField is a field of /proc/self/status, "?" when absent.
func statusField(name string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// hostMarkers are paths a Ballast host's root has and a container image does not. (The system
// init's /usr/sbin/init is no marker: many images and distributions have one.)
func hostMarkers() []string {
	paths := []string{contract.ImageInfoPath, contract.LocalDir}
	if prog, err := contract.FindProgram("apiserver"); err == nil {
		paths = append(paths, prog.Path)
	}
	return paths
}

// checkProc1Root compares the root /proc/1/root leads to with the probe's own: a different one
// (or one with the host's markers) is another root the probe can walk, the host's when PID 1 is
// the host's init.
func checkProc1Root() verdict {
	var own, theirs unix.Stat_t
	if err := unix.Stat("/", &own); err != nil {
		return failed("stat /: %v", err)
	}
	if err := unix.Stat("/proc/1/root/", &theirs); err != nil {
		return blocked("stat /proc/1/root: %s", errText(err))
	}
	var markers []string
	for _, m := range hostMarkers() {
		if _, err := os.Lstat("/proc/1/root" + m); err != nil {
			continue
		}
		if _, err := os.Lstat(m); err == nil {
			continue // the probe's own root has it too: no evidence
		}
		markers = append(markers, m)
	}
	comm := readComm("1")
	other := own.Dev != theirs.Dev || own.Ino != theirs.Ino
	switch {
	case other && len(markers) > 0:
		return allowed("/proc/1/root (pid 1 %s) is another root, with the host's %s", comm, strings.Join(markers, " "))
	case other:
		return allowed("/proc/1/root (pid 1 %s) is another root (dev %d ino %d, the probe's dev %d ino %d)", comm, theirs.Dev, theirs.Ino, own.Dev, own.Ino)
	case len(markers) > 0:
		return allowed("/proc/1/root (pid 1 %s) has the host's %s", comm, strings.Join(markers, " "))
	}
	return blocked("/proc/1/root (pid 1 %s) is the probe's own root", comm)
}

// leakedFD looks at the descriptors the probe started with: one on a file or directory whose
// mount is not in the probe's mount namespace reaches outside the container (the shape of runc's
// CVE-2024-21626).
func (p *prober) leakedFD() verdict {
	if len(p.inherited) == 0 {
		return blocked("no inherited descriptors beyond 0, 1, 2")
	}
	mounts, err := mountIDs()
	if err != nil {
		return failed("read /proc/self/mountinfo: %v", err)
	}
	var leaks, inside []string
	for _, fd := range p.inherited {
		target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		if err != nil {
			continue
		}
		if !strings.HasPrefix(target, "/") {
			inside = append(inside, fmt.Sprintf("%d=%s", fd, target)) // pipe:, socket:, anon_inode:
			continue
		}
		id, ok := fdMountID(fd)
		if ok && !mounts[id] {
			leaks = append(leaks, fmt.Sprintf("fd %d -> %s (mount %d, not in this mount namespace)", fd, target, id))
			continue
		}
		inside = append(inside, fmt.Sprintf("%d=%s", fd, target))
	}
	if len(leaks) > 0 {
		return allowed("%s", strings.Join(first(leaks, 4), "; "))
	}
	return blocked("inherited descriptors stay inside: %s", strings.Join(first(inside, 6), " "))
}

// mountIDs are the ids of the mounts in the probe's mount namespace.
func mountIDs() (map[int]bool, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	ids := map[int]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if id, err := strconv.Atoi(f[0]); err == nil {
			ids[id] = true
		}
	}
	return ids, nil
}

func fdMountID(fd int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "mnt_id:"); ok {
			id, err := strconv.Atoi(strings.TrimSpace(v))
			return id, err == nil
		}
	}
	return 0, false
}
