package supervise

import (
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/init/system/reap"
)

// A service must start with every signal at SIG_DFL and none blocked, whatever the state of the
// init that starts it. Neither comes for free:
//
//   - execve resets caught signals to SIG_DFL but leaves ignored ones ignored, and
//     syscall.ForkExec resets only the signals the Go runtime catches. A signal the init ignores,
//     by signal.Ignore or because it was started with SIG_IGN (SIGHUP under nohup), would reach
//     every service ignored. A shell cannot even trap a signal ignored on entry (POSIX), so a
//     service stopped with SIGHUP would never stop.
//   - The child gets the signal mask of the thread that forked it, and a Go thread takes its
//     mask from the one the process was started with.
//
// syscall.SysProcAttr has nothing for either (CLONE_CLEAR_SIGHAND, which Cloneflags could carry,
// resets only caught signals, as execve does), and the code between fork and exec can only be
// written inside package syscall. So startClean prepares the parent instead:
//
//   - Every signal this process ignores is caught from then on, by a channel nobody reads. For
//     the init that is as good as ignoring it, since the signal is dropped either way, and a
//     caught signal is one that ForkExec resets to SIG_DFL in the child. The change is for good:
//     undoing it after the fork could undo a Notify another goroutine made meanwhile. It is
//     checked at every start, as anyone may call signal.Ignore later, against the kernel's view
//     (SigIgn in /proc/self/status): os/signal.Ignored does not know of a SIG_IGN inherited on
//     SIGTSTP, SIGTTIN or SIGTTOU, which the Go runtime leaves in place.
//   - The fork runs on a locked thread whose signal mask is empty until the child is started.
//
// signal.Reset would not do instead of Notify: for SIGHUP and SIGINT it goes back to an
// inherited SIG_IGN, and the init must keep its own handlers anyway.
//
// Caught rather than ignored, a signal differs for the init itself in two places only: SIGCHLD
// no longer makes the kernel reap children on its own (the Reaper catches it anyway), and
// SIGTTIN/SIGTTOU would be sent rather than skipped if the init touched a terminal it controls
// (it has none). Not covered are signals 32 and 34, which the Go runtime keeps for itself so
// os/signal cannot catch them (an init started by the kernel has nothing ignored), and a
// signal.Ignore in another goroutine between the check and the fork.

// ignoredSink takes the signals this process ignored; nobody reads it.
var ignoredSink = make(chan os.Signal, 1)

// startClean starts a child through r like r.Start, with every signal at SIG_DFL and an empty
// signal mask in the child.
func startClean(r *reap.Reaper, path string, argv []string, attr *syscall.ProcAttr) (*reap.Child, error) {
	if ign := ignoredSignals(); len(ign) > 0 {
		signal.Notify(ignoredSink, ign...)
	}
	// ForkExec gives the child the mask this thread has when it forks.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var empty, old unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &empty, &old); err != nil {
		return nil, fmt.Errorf("start %s: signal mask: %w", path, err)
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return r.Start(path, argv, attr)
}

// ignoredSignals lists the signals whose disposition in this process is SIG_IGN.
func ignoredSignals() []os.Signal {
	// Without /proc, only what os/signal knows.
	mask, _ := procSigIgn()
	var sigs []os.Signal
	for s := syscall.Signal(1); s <= 64; s++ {
		if s == syscall.SIGKILL || s == syscall.SIGSTOP {
			continue
		}
		if mask&(1<<(s-1)) != 0 || signal.Ignored(s) {
			sigs = append(sigs, s)
		}
	}
	return sigs
}

// procSigIgn returns the process's set of ignored signals as the kernel reports it, bit n-1 for
// signal n.
func procSigIgn() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if hex, ok := bytes.CutPrefix(line, []byte("SigIgn:")); ok {
			return strconv.ParseUint(string(bytes.TrimSpace(hex)), 16, 64)
		}
	}
	return 0, fmt.Errorf("/proc/self/status has no SigIgn")
}
