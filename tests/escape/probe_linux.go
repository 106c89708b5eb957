package escape

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
)

// options are the probe's flags for a report run.
type options struct {
	// Suid is the setuid-root copy of the probe the setuid vector runs (--suid).
	Suid string
	// Skip lists vectors not to check (--skip a,b): the exhaustion vectors are for a container
	// with limits, not for a developer's host.
	Skip []string
	// PeerWait is how long other-container-files keeps looking for another probe's secret
	// (--peer-wait), for a peer that starts later; zero looks once.
	PeerWait time.Duration
	// Sleep keeps the probe running after the report (--sleep), so its container stays up and
	// its secret stays readable to a peer, until SIGTERM or SIGINT.
	Sleep bool
	// BrokerRoot, when set, makes this probe the fd broker for the host's root there (--broker):
	// the superpowered probe, with HostRootfs.
	BrokerRoot string
	// BrokerSocket is the broker's abstract socket name (--broker-socket), served or asked.
	BrokerSocket string
	// Peers names the containers whose storage peer-storage looks into (--peer a,b); the
	// probe's own host name among them is left out, so the same image serves every peer.
	Peers []string
	// Storage is the container's persistent directory, where the secret is left too (--storage).
	Storage string
	// SELinuxFS replaces the places selinux-off looks for selinuxfs (--selinuxfs), for tests.
	SELinuxFS string
}

// selfExe re-executes the probe for its child processes (allocator, sleepers, forker): a Go
// program cannot fork without exec, and a child of its own keeps the report's process alive
// whatever the child runs into.
const selfExe = "/proc/self/exe"

// Main is the probe command: args are its arguments without the program name; it returns the
// exit status. The report goes to stdout, usage errors to stderr.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "labels" {
		return printLabels(args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "idle" {
		// An entrypoint that does nothing, for tests that only need a running container. (A bare
		// select{} would be a deadlock to the Go runtime, which exits.)
		for {
			time.Sleep(time.Hour)
		}
	}
	// First, before the probe opens anything: the descriptors it was started with.
	inherited := inheritedFDs()

	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts options
	var skip string
	fs.StringVar(&opts.Suid, "suid", "/probe-suid", "the setuid-root copy of the probe, for the setuid vector")
	fs.StringVar(&skip, "skip", "", "comma-separated vectors not to check")
	fs.DurationVar(&opts.PeerWait, "peer-wait", 0, "how long other-container-files looks for another probe's secret")
	fs.BoolVar(&opts.Sleep, "sleep", false, "sleep after the report until SIGTERM, so the container stays running")
	fs.StringVar(&opts.BrokerRoot, "broker", "", "serve the fd broker for paths under this directory (the host's root)")
	fs.StringVar(&opts.BrokerSocket, "broker-socket", DefaultBrokerSocket, "the broker's abstract socket name, without '@'")
	peers := fs.String("peer", "", "comma-separated names of the containers whose storage peer-storage looks into")
	fs.StringVar(&opts.Storage, "storage", contract.ContainerStorage, "the container's persistent directory, where the secret is left too")
	fs.StringVar(&opts.SELinuxFS, "selinuxfs", "", "internal: where selinux-off looks for selinuxfs instead of /sys/fs/selinux")
	// The modes the probe's own children run in.
	whoami := fs.Bool("whoami", false, "internal: print the effective uid (run as the setuid binary)")
	sleeper := fs.Bool("sleeper", false, "internal: write one byte to stdout, then sleep")
	alloc := fs.Int64("alloc", 0, "internal: allocate and touch this many bytes in 16 MiB steps")
	forkCap := fs.Int("fork-bomb", 0, "internal: start sleepers until fork fails or the cgroup holds this many tasks")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "probe: unexpected arguments %q\n", fs.Args())
		return 2
	}
	switch {
	case *whoami:
		fmt.Fprintf(stdout, "%d\n", os.Geteuid())
		return 0
	case *sleeper:
		return sleep(stdout)
	case *alloc > 0:
		return allocate(*alloc, stdout)
	case *forkCap > 0:
		return forkBomb(*forkCap, stdout)
	}
	for _, v := range strings.Split(skip, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		if !slices.Contains(Vectors(), v) {
			fmt.Fprintf(stderr, "probe: --skip: unknown vector %q (vectors: %s)\n", v, strings.Join(Vectors(), ", "))
			return 2
		}
		opts.Skip = append(opts.Skip, v)
	}
	for _, n := range strings.Split(*peers, ",") {
		if n = strings.TrimSpace(n); n != "" {
			opts.Peers = append(opts.Peers, n)
		}
	}
	if opts.BrokerRoot != "" {
		if err := serveBroker(opts.BrokerSocket, opts.BrokerRoot); err != nil {
			fmt.Fprintf(stderr, "probe: %v\n", err)
			return 1
		}
	}
	return run(opts, inherited, stdout)
}

// run checks every vector not skipped, writes the report to out and, with opts.Sleep, sleeps
// until SIGTERM or SIGINT. inherited are the descriptors beyond 0, 1 and 2 the process started
// with (for leaked-fd), taken before it opened any of its own.
func run(opts options, inherited []int, out io.Writer) int {
	// Orphans of the children (sleepers whose forker died) come back to the probe, which reaps
	// them: in a container it is PID 1 anyway, and on a host they would otherwise be left.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	p := newProber(opts, inherited)
	defer func() {
		if !opts.Sleep {
			p.removeSecret()
		}
	}()
	checks := p.checks()
	n := 0
	for _, v := range Vectors() {
		if slices.Contains(opts.Skip, v) {
			continue
		}
		vd := p.check(checks[v])
		fmt.Fprintln(out, formatLine(v, vd.status, vd.detail))
		n++
		reapOrphans()
	}
	fmt.Fprintln(out, doneLine(n))
	if !opts.Sleep {
		return 0
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-sigs:
			p.removeSecret()
			return 0
		case <-tick.C:
			reapOrphans()
		}
	}
}

// verdict is a vector's outcome: statusBlocked, statusAllowed or statusError, and why.
type verdict struct{ status, detail string }

func blocked(format string, args ...any) verdict {
	return verdict{statusBlocked, fmt.Sprintf(format, args...)}
}

func allowed(format string, args ...any) verdict {
	return verdict{statusAllowed, fmt.Sprintf(format, args...)}
}

func failed(format string, args ...any) verdict {
	return verdict{statusError, fmt.Sprintf(format, args...)}
}

// check runs one vector's check; a bug in one check becomes its ERROR line, not the end of the
// report.
func (p *prober) check(f func() verdict) (vd verdict) {
	defer func() {
		if r := recover(); r != nil {
			vd = failed("the check panicked: %v", r)
		}
	}()
	if f == nil {
		return failed("no check for this vector")
	}
	return f()
}

// errText names an error by its errno (EPERM, EROFS, ...), the part of it that tells which
// protection answered; other errors keep their text.
func errText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
		return errno.Error()
	}
	return err.Error()
}

// inheritedFDs lists the descriptors above 2 the process was started with. It reads /proc/self/fd
// with raw system calls, because os.Open would start the runtime's poller and add its own
// descriptors to the list.
func inheritedFDs() []int {
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(dir)
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.ReadDirent(dir, buf)
		if err != nil || n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	var fds []int
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd <= 2 || fd == dir {
			continue
		}
		// An inherited descriptor came through exec, so it is not close-on-exec; the runtime's
		// own (Go reads the cgroup's CPU limit through descriptors it opens before main) are.
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue
		}
		fds = append(fds, fd)
	}
	slices.Sort(fds)
	return fds
}

// reapOrphans collects exited children nobody waits for. It runs between checks, when no
// exec.Cmd of the probe's is waiting for its own child.
func reapOrphans() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
