// Command pause is the process of a Kubernetes pod sandbox ("pause") container, Ballast's own so
// that the image holds nothing but it: it keeps the pod's namespaces alive, reaps the zombies of
// the pod's PID namespace when it is that namespace's init (shareProcessNamespace), and exits 0 on
// SIGINT or SIGTERM. The other signals that would end a process are ignored, so that it stops the
// same way whether or not it is its namespace's PID 1 (which the kernel shields from them).
package main

import (
	"errors"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	signal.Ignore(syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE,
		syscall.SIGALRM, syscall.SIGVTALRM, syscall.SIGPROF, syscall.SIGIO, syscall.SIGPWR,
		syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU)
	os.Exit(loop(sigs, reap))
}

// loop waits for signals until SIGINT or SIGTERM: a SIGCHLD reaps what has exited.
func loop(sigs <-chan os.Signal, reap func() int) int {
	for s := range sigs {
		switch s {
		case syscall.SIGINT, syscall.SIGTERM:
			return 0
		case syscall.SIGCHLD:
			reap()
		}
	}
	return 0
}

// reap collects every child that has exited and returns how many. Signals coalesce, so one
// SIGCHLD may stand for several children: wait until none is left.
func reap() int {
	n := 0
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return n
		}
		n++
	}
}
