// Package escape is the container escape suite's probe: a static program that runs inside a
// container and tries, one by one, the ways out of it (host processes, mounts, raw sockets,
// kernel modules, ptrace, /proc/sys and /sys, block devices, device nodes, the host's API and
// containerd sockets, other containers' files, turning SELinux off, the host's /local and other
// containers' storage through descriptors a privileged probe passes, setuid binaries, cgroup
// limits, the host's root through /proc/1/root, leaked file descriptors, memory and process
// exhaustion). It reports each
// vector on stdout, which the image test reads from the container log:
//
//	ballast-probe: <vector> BLOCKED <one-line detail>
//	ballast-probe: <vector> ALLOWED <one-line detail>
//	ballast-probe: <vector> ERROR <one-line detail>
//	ballast-probe: done <n> vectors
//
// ERROR means the probe could not tell (its setup is wrong, e.g. the setuid binary is missing),
// never that the vector is blocked. n counts the vector lines above it, so a truncated report is
// told from a complete one. The program is cmd/probe; ParseReport reads its output.
//
// The probe expects to be its container's first process (the image's entrypoint): a PID 1 other
// than itself counts as a host process. Its flags: --sleep keeps it running after the report
// (until SIGTERM), --suid names its setuid-root copy (default /probe-suid), --skip leaves vectors
// out (the exhaustion vectors on a host without limits), --peer-wait gives
// other-container-files, peer-storage and the broker time to appear when they start later,
// --peer names the containers whose storage peer-storage looks into, --broker makes the probe
// the fd broker (see broker_linux.go) for the host's root it names. Every check undoes what it
// did: mounts are unmounted, nodes and files removed, limits restored, enforcing put back,
// children killed; nothing else is written to the files opened for writing.
package escape

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The escape vectors, as the report names them.
const (
	// VectorHostProcesses: processes outside the probe's container are visible (no pid namespace).
	VectorHostProcesses = "host-processes"
	// VectorMount: mount(2) of a tmpfs works (CAP_SYS_ADMIN, no seccomp filter).
	VectorMount = "mount"
	// VectorRawSocket: socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) works (CAP_NET_RAW).
	VectorRawSocket = "raw-socket"
	// VectorKernelModule: delete_module/finit_module get past the kernel's permission check
	// (CAP_SYS_MODULE).
	VectorKernelModule = "kernel-module"
	// VectorPtrace: ptrace(PTRACE_SEIZE) of a child, or of PID 1 when that is not the probe, works.
	VectorPtrace = "ptrace"
	// VectorProcSysWrite: a /proc/sys file opens for writing (/proc/sys not read-only).
	VectorProcSysWrite = "proc-sys-write"
	// VectorSysWrite: a sysfs attribute opens for writing (/sys not read-only).
	VectorSysWrite = "sys-write"
	// VectorBlockDevice: a block device node opens (host devices in the container).
	VectorBlockDevice = "block-device"
	// VectorMknod: mknod(2) of a character device works (CAP_MKNOD).
	VectorMknod = "mknod"
	// VectorAPISocket: the host API's socket accepts a connection.
	VectorAPISocket = "api-socket"
	// VectorContainerdSocket: containerd's socket accepts a connection.
	VectorContainerdSocket = "containerd-socket"
	// VectorOtherContainerFiles: the probe reads the secret file another probe instance wrote in
	// its own container's /tmp. It needs a second probe running at the same time (the image test
	// runs two side by side); alone, the probe has nothing to find and reports BLOCKED.
	VectorOtherContainerFiles = "other-container-files"
	// VectorSELinuxOff: enforcing is turned off (0 written to selinuxfs's enforce) or a policy
	// write gets past the load_policy check, through the container's /sys, the host's root or a
	// descriptor from the broker; or SELinux is permissive already. No container may do it, a
	// superpowered one neither (AlwaysBlocked).
	VectorSELinuxOff = "selinux-off"
	// VectorLocalWrite: a file is made in the host's /local or /local/host-containers through a
	// directory descriptor the broker passed (see the broker below).
	VectorLocalWrite = "local-write"
	// VectorPeerStorage: the probe reads the secret another probe left in its container's storage
	// (/local/host-containers/<peer>), through a directory descriptor of it the broker passed.
	// The peers are named with --peer.
	VectorPeerStorage = "peer-storage"
	// VectorSetuid: a setuid-root binary run by an unprivileged user gets euid 0 (no
	// no_new_privs, no nosuid).
	VectorSetuid = "setuid"
	// VectorCgroupRaise: the container's own memory or pids limit can be raised.
	VectorCgroupRaise = "cgroup-raise"
	// VectorProc1Root: /proc/1/root leads to a root other than the container's (the host's).
	VectorProc1Root = "proc1-root"
	// VectorLeakedFD: a file descriptor inherited at start (beyond 0, 1, 2) refers to a file or
	// directory on a mount outside the container's mount namespace.
	VectorLeakedFD = "leaked-fd"
	// VectorMemoryExhaust: a child allocates past the container's memory limit and survives.
	VectorMemoryExhaust = "memory-exhaust"
	// VectorPidsExhaust: the container runs more tasks than its pids limit.
	VectorPidsExhaust = "pids-exhaust"
)

// Vectors returns every vector in the order the probe checks them.
func Vectors() []string {
	return []string{
		VectorHostProcesses, VectorMount, VectorRawSocket, VectorKernelModule, VectorPtrace,
		VectorProcSysWrite, VectorSysWrite, VectorBlockDevice, VectorMknod, VectorAPISocket,
		VectorContainerdSocket, VectorOtherContainerFiles, VectorSELinuxOff, VectorLocalWrite,
		VectorPeerStorage, VectorSetuid, VectorCgroupRaise, VectorProc1Root, VectorLeakedFD,
		VectorMemoryExhaust, VectorPidsExhaust,
	}
}

// PrivilegedVectors returns the vectors a superpowered container (privileged, the host's pid and
// network namespaces, its devices, its root at /.ballast/rootfs, the API socket) must report
// ALLOWED: what an administrator's container is for. The others are not privileges: leaked-fd is
// a runtime bug in any container, and the memory and pids limits hold for superpowered containers
// too; nor is selinux-off (AlwaysBlocked). other-container-files needs a second probe running
// (see VectorOtherContainerFiles); local-write and peer-storage need the broker, and
// peer-storage a peer.
func PrivilegedVectors() []string {
	return []string{
		VectorHostProcesses, VectorMount, VectorRawSocket, VectorKernelModule, VectorPtrace,
		VectorProcSysWrite, VectorSysWrite, VectorBlockDevice, VectorMknod, VectorAPISocket,
		VectorContainerdSocket, VectorOtherContainerFiles, VectorLocalWrite, VectorPeerStorage,
		VectorSetuid, VectorCgroupRaise, VectorProc1Root,
	}
}

// AlwaysBlocked returns the vectors every container must report BLOCKED, a superpowered one
// too: SELinux stays enforcing whatever a container's privileges.
func AlwaysBlocked() []string {
	return []string{VectorSELinuxOff}
}

// HostRootfs is where a superpowered container has the host's root, runtime/spec.HostRootfs:
// the probe does not import the runtime package, which would pull containerd into it.
const HostRootfs = "/.ballast/rootfs"

// Result is one vector's line of a report.
type Result struct {
	Vector  string
	Allowed bool
	Detail  string
}

// LinePrefix starts every line of the report; text before it on a line (a log's timestamp and
// stream) is ignored.
const LinePrefix = "ballast-probe: "

// The verdicts of a result line.
const (
	statusBlocked = "BLOCKED"
	statusAllowed = "ALLOWED"
	statusError   = "ERROR"
)

// formatLine is one line of the report, without the newline. The detail is kept on one line: a
// multi-line error would otherwise break the report apart.
func formatLine(vector, status, detail string) string {
	detail = strings.Join(strings.Fields(detail), " ")
	if detail == "" {
		detail = "-"
	}
	return LinePrefix + vector + " " + status + " " + detail
}

// doneLine ends a report of n vector lines.
func doneLine(n int) string { return fmt.Sprintf("%sdone %d vectors", LinePrefix, n) }

// ParseReport reads a probe's report from text (a container log: other lines are ignored) and
// returns the results by vector. It fails on a vector that reported ERROR, an unknown or repeated
// vector, a malformed line, a line after the done line, and a missing done line or one whose
// count does not match: the report must be whole and from one run. Vectors the probe was told
// to skip are simply absent.
func ParseReport(text string) (map[string]Result, error) {
	results := map[string]Result{}
	var errs []error
	done, lines := -1, 0
	for i, line := range strings.Split(text, "\n") {
		at := strings.Index(line, LinePrefix)
		if at < 0 {
			continue
		}
		lineNo := i + 1
		fields := strings.Fields(line[at+len(LinePrefix):])
		if len(fields) == 0 {
			errs = append(errs, fmt.Errorf("line %d: empty report line", lineNo))
			continue
		}
		if done >= 0 {
			errs = append(errs, fmt.Errorf("line %d: %q after the done line (two runs in one log?)", lineNo, fields[0]))
			continue
		}
		if fields[0] == "done" {
			if len(fields) != 3 || fields[2] != "vectors" {
				errs = append(errs, fmt.Errorf("line %d: malformed done line %q", lineNo, line[at:]))
				done = lines // stop reading, but do not also complain that it is missing
				continue
			}
			n, err := strconv.Atoi(fields[1])
			if err != nil || n < 0 {
				errs = append(errs, fmt.Errorf("line %d: done line count %q is not a number", lineNo, fields[1]))
				n = lines
			}
			done = n
			continue
		}
		lines++
		vector := fields[0]
		if len(fields) < 2 {
			errs = append(errs, fmt.Errorf("line %d: vector %s without a verdict", lineNo, vector))
			continue
		}
		detail := strings.Join(fields[2:], " ")
		if !slices.Contains(Vectors(), vector) {
			errs = append(errs, fmt.Errorf("line %d: unknown vector %q", lineNo, vector))
			continue
		}
		if _, dup := results[vector]; dup {
			errs = append(errs, fmt.Errorf("line %d: vector %s reported twice", lineNo, vector))
			continue
		}
		switch fields[1] {
		case statusAllowed, statusBlocked:
			results[vector] = Result{Vector: vector, Allowed: fields[1] == statusAllowed, Detail: detail}
		case statusError:
			errs = append(errs, fmt.Errorf("vector %s: the probe could not check it: %s", vector, detail))
		default:
			errs = append(errs, fmt.Errorf("line %d: vector %s: verdict %q, want %s or %s", lineNo, vector, fields[1], statusBlocked, statusAllowed))
		}
	}
	switch {
	case done < 0:
		errs = append(errs, fmt.Errorf("no %q line: the report is incomplete (%d vector lines)", "done", lines))
	case done != lines:
		errs = append(errs, fmt.Errorf("the done line counts %d vectors, the report has %d lines", done, lines))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("escape: probe report: %w", errors.Join(errs...))
	}
	return results, nil
}
