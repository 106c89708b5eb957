package escape

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sleeperEnv is a child's environment: one P keeps a sleeping Go process at three threads, which
// count against pids.max like processes do.
func sleeperEnv() []string { return append(os.Environ(), "GOMAXPROCS=1") }

// sleep is the --sleeper mode: say so on stdout (the parent waits for it), then sleep until
// killed.
func sleep(stdout io.Writer) int {
	// Hundreds of sleepers fill a container's memory too; if the OOM killer comes, it should
	// take a sleeper rather than the probe that reports.
	preferOOMKill()
	if _, err := stdout.Write([]byte("r")); err != nil {
		return 1
	}
	if f, ok := stdout.(*os.File); ok {
		f.Close()
	}
	for {
		unix.Pause()
	}
}

// sleeperStart is how long a sleeper may take to start: a loaded TCG guest, and gVisor, which
// starts a process in its sentry, can take seconds.
const sleeperStart = time.Minute

// startSleeper starts a sleeping child of the probe and waits until it runs.
func startSleeper() (*exec.Cmd, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(selfExe, "--sleeper")
	cmd.Env = sleeperEnv()
	cmd.Stdout = w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return nil, fmt.Errorf("start %s --sleeper: %w", selfExe, err)
	}
	r.SetReadDeadline(time.Now().Add(sleeperStart))
	if _, err := io.ReadFull(r, make([]byte, 1)); err != nil {
		stopChild(cmd)
		return nil, fmt.Errorf("%s --sleeper did not start: %w", selfExe, err)
	}
	return cmd, nil
}

func stopChild(cmd *exec.Cmd) {
	cmd.Process.Kill()
	cmd.Wait()
}

// preferOOMKill makes this process, rather than the probe that waits for it, the OOM killer's
// choice. Raising one's own score needs no privilege.
func preferOOMKill() {
	os.WriteFile("/proc/self/oom_score_adj", []byte("1000"), 0)
}

// allocStep is how much the allocator adds at a time.
const allocStep = 16 << 20

// allocate is the --alloc mode: map and touch memory in allocStep steps up to total, saying on
// stdout how far it got, so the parent knows even when the OOM killer ends it. MAP_POPULATE has
// the kernel, or gVisor's sentry, commit each step at once: in gVisor each page touched is
// otherwise a fault trapped into the sentry, thousands per step, which on a loaded TCG guest
// took the allocator minutes to reach a pod's limit. The pages are touched all the same, so
// that a kernel that skipped the population still commits them.
func allocate(total int64, stdout io.Writer) int {
	preferOOMKill()
	page := os.Getpagesize()
	var got int64
	for got < total {
		b, err := unix.Mmap(-1, 0, allocStep, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
		if err != nil {
			fmt.Fprintf(stdout, "alloc-failed %d %s\n", got, errText(err))
			return 0
		}
		for i := 0; i < len(b); i += page {
			b[i] = 1
		}
		got += allocStep
		fmt.Fprintf(stdout, "alloc %d\n", got)
	}
	fmt.Fprintf(stdout, "alloc-done %d\n", got)
	return 0
}

// allocTimeout bounds the memory test, and allocStall is how long the allocator may go without a
// step: a step is 16 MiB, which even gVisor on a loaded TCG guest commits in seconds.
const (
	allocTimeout = 8 * time.Minute
	allocStall   = 2 * time.Minute
)

// noMemoryLimitCap is how far the allocator goes when the cgroup has no memory limit.
const noMemoryLimitCap = 1 << 30

// checkMemoryExhaust has a child allocate past the cgroup's memory limit: it must be killed, or
// its allocations refused, before it gets there.
func checkMemoryExhaust() verdict {
	cg := findCgroup()
	limit, known, lerr := readLimit(cg.memLimit)
	target := int64(noMemoryLimitCap)
	limitText := "no memory limit"
	if lerr != nil {
		limitText = "memory limit unknown: " + lerr.Error()
	}
	if known {
		target = limit + 256<<20
		limitText = fmt.Sprintf("memory limit %d MiB", limit>>20)
	}
	cmd := exec.Command(selfExe, "--alloc", strconv.FormatInt(target, 10))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return failed("allocator: %v", err)
	}
	if err := cmd.Start(); err != nil {
		return failed("start %s --alloc: %v", selfExe, err)
	}
	timer := time.AfterFunc(allocTimeout, func() { cmd.Process.Kill() })
	var stalled atomic.Bool
	stall := time.AfterFunc(allocStall, func() {
		stalled.Store(true)
		cmd.Process.Kill()
	})
	var got int64
	var done bool
	var refused string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		stall.Reset(allocStall)
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		got = max(got, n)
		switch f[0] {
		case "alloc-done":
			done = true
		case "alloc-failed":
			refused = strings.Join(f[2:], " ")
		}
	}
	stall.Stop()
	err = cmd.Wait()
	timedOut := !timer.Stop()
	mib := got >> 20
	exceeded := known && got > limit
	var ws syscall.WaitStatus
	if cmd.ProcessState != nil {
		if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			ws = st
		}
	}
	switch {
	case stalled.Load() && !timedOut:
		return failed("allocator stalled: no step in %v at %d MiB (%s): no verdict", allocStall, mib, limitText)
	case timedOut:
		return failed("allocator still running after %v at %d MiB (%s)", allocTimeout, mib, limitText)
	case exceeded && err == nil:
		return allowed("allocated and touched %d MiB, past the %s, and survived", mib, limitText)
	case exceeded:
		return allowed("allocated and touched %d MiB, past the %s, before it ended (%v)", mib, limitText, err)
	case !known && done:
		return allowed("allocated and touched %d MiB with %s", mib, limitText)
	case ws.Signaled() && ws.Signal() == syscall.SIGKILL:
		return blocked("allocator killed by SIGKILL (OOM) after %d MiB (%s)", mib, limitText)
	case refused != "":
		return blocked("allocation refused (%s) after %d MiB (%s)", refused, mib, limitText)
	}
	return failed("allocator ended (%v) after %d MiB of %d MiB (%s)", err, mib, target>>20, limitText)
}

// forkerTimeout bounds the fork test; forkStall, below, ends it sooner when it stops getting
// anywhere.
const forkerTimeout = 8 * time.Minute

// forkStall is how long the forker may go without a new task before the probe gives up on it:
// longer than a sleeper may take to start. In gVisor a limit outside the sandbox can hold a fork
// in the sentry instead of failing it; the probe cannot tell that from a hang, so it reports no
// verdict, and the caller that sees the host's cgroup (TestKubernetesNode) judges it.
const forkStall = sleeperStart + time.Minute

// noPidsLimitCap is how many tasks the fork test goes to when the cgroup has no pids limit.
const noPidsLimitCap = 4096

// checkPidsExhaust starts sleepers until fork fails: the failure must come at or below
// pids.max. A separate forking process does it, so when the limit refuses a thread to a Go
// runtime it is that process that dies, not the probe; and the probe's own threads, which the
// limit counts too, are warmed up beforehand so it needs no new one while the cgroup is full.
func checkPidsExhaust() verdict {
	cg := findCgroup()
	limit, known, lerr := readLimit(cg.pidsMax)
	capTasks := noPidsLimitCap
	limitText := "no pids limit"
	if lerr != nil {
		limitText = "pids limit unknown: " + lerr.Error()
	}
	if known {
		capTasks = int(limit) + 64
		limitText = fmt.Sprintf("pids.max %d", limit)
	}
	warmThreads()
	cmd := exec.Command(selfExe, "--fork-bomb", strconv.Itoa(capTasks))
	// Its own process group, so that whatever it leaves is killed as one.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return failed("forker: %v", err)
	}
	if err := cmd.Start(); err != nil {
		return failed("start %s --fork-bomb: %v", selfExe, err)
	}
	pgid := cmd.Process.Pid
	timer := time.AfterFunc(forkerTimeout, func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	var stalled atomic.Bool
	stall := time.AfterFunc(forkStall, func() {
		stalled.Store(true)
		syscall.Kill(-pgid, syscall.SIGKILL)
	})
	peak, children := 0, 0
	var end []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		stall.Reset(forkStall)
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "tasks":
			if len(f) >= 4 {
				t, _ := strconv.Atoi(f[1])
				c, _ := strconv.Atoi(f[3])
				peak, children = max(peak, t), max(children, c)
			}
		case "cap", "refused", "stuck":
			end = f
		}
	}
	stall.Stop()
	// Before Wait, while the group's leader is not yet reaped and its id cannot be reused.
	syscall.Kill(-pgid, syscall.SIGKILL)
	werr := cmd.Wait()
	timedOut := !timer.Stop()
	reapOrphans()
	if stalled.Load() && !timedOut {
		return failed("fork stalled: no new task in %v at %d tasks (%s, %d sleepers): no verdict", forkStall, peak, limitText, children)
	}
	if timedOut {
		return failed("forker still running after %v at %d tasks (%s)", forkerTimeout, peak, limitText)
	}
	var atTasks int
	var why string
	if len(end) >= 3 && end[0] == "refused" {
		atTasks, _ = strconv.Atoi(end[1])
		why = strings.Join(end[2:], " ")
		peak = max(peak, atTasks)
	}
	switch {
	case known && peak > int(limit):
		return allowed("%d tasks in the cgroup, beyond %s (%d sleepers)", peak, limitText, children)
	case !known && len(end) > 0 && end[0] == "cap":
		return allowed("reached %d tasks (%d sleepers) with %s", peak, children, limitText)
	case len(end) > 0 && end[0] == "stuck":
		return failed("%s at %d tasks (%s, %d sleepers): no verdict", strings.Join(end[2:], " "), peak, limitText, children)
	case why != "":
		return blocked("fork refused (%s) at %d tasks, %s, after %d sleepers", why, atTasks, limitText, children)
	case werr != nil && (!known || peak <= int(limit)):
		// The limit refused the forker's runtime a thread, which is fatal to a Go program.
		return blocked("the forker died (%v) at %d tasks, %s, after %d sleepers: a thread was refused", werr, peak, limitText, children)
	}
	return failed("forker ended (%v) at %d tasks without a verdict (%s)", werr, peak, limitText)
}

// warmThreads has the runtime start a few threads it keeps idle, by blocking goroutines in system
// calls at once: while the cgroup is full the probe must not need a new one, which it could not
// get.
func warmThreads() {
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts := unix.Timespec{Nsec: 20_000_000}
			unix.Nanosleep(&ts, nil)
		}()
	}
	wg.Wait()
}

// forkBomb is the --fork-bomb mode: start sleepers one after the other, each waited for until it
// runs, until fork fails, a sleeper dies starting (its runtime was refused a thread), or the
// cgroup holds capTasks tasks. It reports "tasks <n> children <n>" after each sleeper and ends
// with "cap <tasks>" or "refused <tasks> <why>". The sleepers are killed before it returns.
func forkBomb(capTasks int, stdout io.Writer) int {
	preferOOMKill()
	cg := findCgroup()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(stdout, "refused %d open %s: %s\n", 0, os.DevNull, errText(err))
		return 1
	}
	defer devnull.Close()
	var pids []int
	defer func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		for _, pid := range pids {
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, 0, nil)
		}
	}()
	env := sleeperEnv()
	for {
		tasks := countTasks(cg, pids)
		fmt.Fprintf(stdout, "tasks %d children %d\n", tasks, len(pids))
		if tasks >= capTasks {
			fmt.Fprintf(stdout, "cap %d\n", tasks)
			return 0
		}
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			fmt.Fprintf(stdout, "refused %d pipe: %s\n", countTasks(cg, pids), errText(err))
			return 0
		}
		pid, err := syscall.ForkExec(selfExe, []string{selfExe, "--sleeper"}, &syscall.ProcAttr{
			Env:   env,
			Files: []uintptr{devnull.Fd(), uintptr(p[1]), devnull.Fd()},
			Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
		})
		unix.Close(p[1])
		if err != nil {
			unix.Close(p[0])
			fmt.Fprintf(stdout, "refused %d fork: %s\n", countTasks(cg, pids), errText(err))
			return 0
		}
		pids = append(pids, pid)
		ready, died := waitReady(p[0], sleeperStart)
		unix.Close(p[0])
		switch {
		case died:
			fmt.Fprintf(stdout, "refused %d a sleeper died starting\n", countTasks(cg, pids))
			return 0
		case !ready:
			// Slow is not refused: no verdict.
			fmt.Fprintf(stdout, "stuck %d a sleeper did not start within %v\n", countTasks(cg, pids), sleeperStart)
			return 0
		}
	}
}

// waitReady waits for the byte a sleeper writes once it runs: ready when it came, died when the
// pipe ended (or failed) first, neither when the timeout passed.
func waitReady(fd int, timeout time.Duration) (ready, died bool) {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false, false
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(left/time.Millisecond)+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, true
		}
		if n == 0 {
			continue
		}
		var b [1]byte
		m, err := unix.Read(fd, b[:])
		ok := err == nil && m == 1
		return ok, !ok
	}
}

// countTasks is the number of tasks in the cgroup: pids.current, or, where the probe cannot read
// it, the threads of the probe, the forker and its sleepers.
func countTasks(cg cgroupFiles, pids []int) int {
	if cg.pidsCurrent != "" {
		if b, err := os.ReadFile(cg.pidsCurrent); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return n
			}
		}
	}
	n := threads(os.Getppid()) + threads(os.Getpid())
	for _, pid := range pids {
		n += threads(pid)
	}
	return n
}

func threads(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
