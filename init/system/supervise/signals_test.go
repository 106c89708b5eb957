package supervise

import (
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/init/system/reap"
	"github.com/ballast-os/ballast/tests/testutil"
)

// inheritedEnv marks a copy of this test binary started by an "inherited" case of
// TestServiceSignalDefaults: it got its dispositions and mask at exec, as an init would.
const inheritedEnv = "BALLAST_SUPERVISE_INHERITED_SIGNALS"

// TestServiceSignalDefaults starts services from a process that ignores and blocks signals and
// checks that each starts with no signal ignored (SigIgn) and none blocked (SigBlk).
func TestServiceSignalDefaults(t *testing.T) {
	termination := []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1}
	tests := []struct {
		name   string
		ignore []syscall.Signal // ignored in the starting process, with signal.Ignore
		block  []syscall.Signal // blocked on the thread that starts the service
		tty    bool             // the service runs on a terminal (Exec.TTY)
		// inherited: ignore and block are applied in this process and then inherited at exec by
		// a fresh copy of the test binary, which starts the service. This is a Go program started
		// with SIG_IGN, as under nohup; the Go runtime leaves an inherited SIG_IGN on SIGHUP,
		// SIGINT and the job-control signals in place, and os/signal does not even report it for
		// the latter.
		inherited bool
	}{
		{name: "clean"},
		{name: "SIGHUP_ignored", ignore: []syscall.Signal{syscall.SIGHUP}},
		{name: "termination_signals_ignored", ignore: termination},
		{name: "job_control_ignored", ignore: []syscall.Signal{syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGPIPE}},
		{name: "blocked", block: append([]syscall.Signal{syscall.SIGUSR2, syscall.SIGCHLD, syscall.SIGWINCH}, termination...)},
		{name: "ignored_and_blocked", ignore: termination, block: []syscall.Signal{syscall.SIGUSR2, syscall.SIGCONT}},
		{name: "ignored_and_blocked_on_a_terminal", ignore: termination, block: []syscall.Signal{syscall.SIGUSR2, syscall.SIGCONT}, tty: true},
		{
			name:      "inherited",
			ignore:    []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU},
			block:     []syscall.Signal{syscall.SIGUSR2, syscall.SIGWINCH},
			inherited: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if os.Getenv(inheritedEnv) != "" {
				if !tt.inherited {
					t.Skip("only the inherited case runs in the copy")
				}
				// This is the copy: the dispositions and the mask came with exec.
				ign, blk := procSignalMasks(t)
				t.Logf("starting with SigIgn %#x SigBlk %#x", ign, blk)
				if want := sigbits(tt.ignore...); ign&want != want {
					t.Fatalf("the copy did not inherit SIG_IGN on %v: SigIgn %#x", signalNames(want), ign)
				}
				if want := sigbits(tt.block...); blk&want != want {
					t.Fatalf("the copy did not inherit the mask %v: SigBlk %#x", signalNames(want), blk)
				}
				checkServiceSignals(t, tt.tty)
				return
			}

			ignoreSignals(t, tt.ignore...)
			// The mask is per thread: block on this goroutine's thread, the one that will fork.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var set, old unix.Sigset_t
			for _, s := range tt.block {
				set.Val[(s-1)/64] |= 1 << ((s - 1) % 64)
			}
			if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err != nil {
				t.Fatal(err)
			}
			defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)

			if tt.inherited {
				runInheritedCopy(t)
				return
			}
			checkServiceSignals(t, tt.tty)
		})
	}
}

// checkServiceSignals starts a service that reports its own signal masks and fails the test
// unless none is ignored or blocked.
func checkServiceSignals(t *testing.T, tty bool) {
	t.Helper()
	grep := testutil.Tool(t, "grep", "grep")
	// grep is the service itself, so no shell stands between the supervisor and the report.
	x := &Exec{
		Reaper: testReaper,
		Path:   grep,
		Args:   []string{"-E", "^Sig(Ign|Blk):", "/proc/self/status"},
		Env:    []string{"PATH=/usr/bin:/bin"},
	}
	var master *os.File
	if tty {
		master, x.TTY = openPTY(t)
	} else {
		x.Log = &lineLog{}
	}
	inst, err := x.Start("report")
	if err != nil {
		t.Fatal(err)
	}
	var report string
	if tty {
		var got bytes.Buffer
		buf := make([]byte, 256)
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(got.String(), "\n") < 2 && time.Now().Before(deadline) {
			master.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, _ := master.Read(buf)
			got.Write(buf[:n])
		}
		report = got.String()
	}
	select {
	case <-inst.Done():
	case <-time.After(10 * time.Second):
		inst.Signal(syscall.SIGKILL)
		t.Fatal("the report did not exit")
	}
	if !tty {
		report = strings.Join(inst.Tail(), "\n")
	}
	if ws := inst.Status(); !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("report: %s; output %q", reap.Describe(ws), report)
	}
	masks := map[string]uint64{}
	for _, line := range strings.Split(report, "\n") {
		name, hex, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			t.Fatalf("report line %q: %v", line, err)
		}
		masks[name] = v
	}
	// Signal 32 is the Go runtime's own (glibc's SIGCANCEL): os/signal cannot catch it, so
	// startClean cannot undo a SIG_IGN this process started with, as signals.go says. GNU make
	// gives one to everything it runs (glibc's posix_spawn ignores its internal signals in the
	// child), so under make test the service may have it too; an init started by the kernel
	// has nothing ignored. Nothing else is let through.
	if v, ok := masks["SigIgn"]; ok {
		selfIgn, _ := procSignalMasks(t)
		masks["SigIgn"] = v &^ (selfIgn & sigbits(32))
	}
	for _, name := range []string{"SigIgn", "SigBlk"} {
		v, ok := masks[name]
		switch {
		case !ok:
			t.Errorf("report %q lacks %s", report, name)
		case v != 0:
			t.Errorf("service started with %s %#x (%v), want none", name, v, signalNames(v))
		}
	}
}

// runInheritedCopy runs the inherited case in a copy of this test binary started with the
// current dispositions and this thread's mask. It is started through the Reaper directly, which
// passes both on as any fork and exec would.
func runInheritedCopy(t *testing.T) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(t.TempDir(), "copy.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	parent, sub, _ := strings.Cut(t.Name(), "/")
	args := []string{self, "-test.run=^" + parent + "$/^" + sub + "$", "-test.count=1", "-test.v", "-test.timeout=60s"}
	c, err := testReaper.Start(self, args, &syscall.ProcAttr{
		Env:   append(os.Environ(), inheritedEnv+"=1"),
		Files: []uintptr{devnull.Fd(), out.Fd(), out.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(90 * time.Second):
		c.SignalGroup(syscall.SIGKILL)
		<-c.Done()
	}
	b, _ := os.ReadFile(out.Name())
	if ws := c.Status(); !ws.Exited() || ws.ExitStatus() != 0 || !strings.Contains(string(b), "--- PASS: "+t.Name()) {
		t.Errorf("the copy started with inherited signals: %s\n%s", reap.Describe(ws), b)
	}
}

// ignoreSignals makes this process ignore sigs until the end of the test, then undoes that as
// far as os/signal allows. signal.Reset alone would keep an ignored signal ignored; Notify first
// reinstalls the Go handler, which Reset then keeps while dropping every subscription, ours and
// the supervisor's. SIGHUP and SIGINT are the exception: once ignored, Reset returns them to
// SIG_IGN, so they stay caught by a channel nobody reads.
func ignoreSignals(t *testing.T, sigs ...syscall.Signal) {
	if len(sigs) == 0 {
		return
	}
	var was, wasNot []os.Signal
	for _, s := range sigs {
		if signal.Ignored(s) {
			was = append(was, s)
		} else {
			wasNot = append(wasNot, s)
		}
	}
	for _, s := range sigs {
		signal.Ignore(s)
	}
	t.Cleanup(func() {
		if len(was) > 0 {
			signal.Ignore(was...)
		}
		if len(wasNot) > 0 {
			signal.Notify(restored, wasNot...)
			signal.Reset(wasNot...)
			for _, s := range wasNot {
				if s == syscall.SIGHUP || s == syscall.SIGINT {
					signal.Notify(restored, s)
				}
			}
		}
	})
}

// restored takes the signals ignoreSignals cannot hand back to the Go runtime.
var restored = make(chan os.Signal, 1)

// procSignalMasks returns SigIgn and SigBlk of this process (its main thread).
func procSignalMasks(t *testing.T) (ign, blk uint64) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, hex, _ := strings.Cut(line, ":")
		var p *uint64
		switch name {
		case "SigIgn":
			p = &ign
		case "SigBlk":
			p = &blk
		default:
			continue
		}
		if *p, err = strconv.ParseUint(strings.TrimSpace(hex), 16, 64); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
	}
	return ign, blk
}

func sigbits(sigs ...syscall.Signal) uint64 {
	var m uint64
	for _, s := range sigs {
		m |= 1 << (s - 1)
	}
	return m
}

func signalNames(mask uint64) []string {
	var names []string
	for s := syscall.Signal(1); s <= 64; s++ {
		if mask&sigbits(s) != 0 {
			names = append(names, fmt.Sprint(s))
		}
	}
	return names
}
