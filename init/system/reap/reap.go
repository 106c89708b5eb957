// Package reap starts child processes and collects every exit in one place.
//
// PID 1 inherits every orphan on the system, so it must call wait4(-1) to clear zombies. A second
// party calling wait on a specific child (exec.Cmd.Wait, os.Process.Wait) would race with that
// loop and lose the status. The Reaper is therefore the only caller of wait4 in the process: it
// starts the children it is asked for and hands each exit status to the child it belongs to. Exits
// of processes it did not start (orphans) go to an optional handler.
//
// Use one Reaper per process, and nothing else that waits for children (no os/exec).
package reap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Reaper starts children and collects all exits with wait4(-1).
type Reaper struct {
	// mu is held across fork and registration and across each wait4 and its dispatch, so an exit
	// is never collected for a pid that is not registered yet, and a registered pid is never
	// signalled after it was reaped (the number could already belong to someone else).
	mu       sync.Mutex
	children map[int]*Child
	orphan   func(pid int, status syscall.WaitStatus)
}

// Option configures a Reaper.
type Option func(*Reaper)

// WithOrphanHandler calls f for each exit of a process the Reaper did not start. f runs with the
// Reaper's lock held, so it must not call the Reaper.
func WithOrphanHandler(f func(pid int, status syscall.WaitStatus)) Option {
	return func(r *Reaper) { r.orphan = f }
}

// New returns a Reaper. Call Run to make it collect exits.
func New(opts ...Option) *Reaper {
	r := &Reaper{children: map[int]*Child{}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Child is a process started by a Reaper.
type Child struct {
	r      *Reaper
	pid    int
	done   chan struct{}
	status syscall.WaitStatus // set before done is closed
	exited bool               // guarded by r.mu
}

// Start forks and execs path with argv (argv[0] included) and attr, like syscall.ForkExec, and
// registers the child so its exit is routed to it.
func (r *Reaper) Start(path string, argv []string, attr *syscall.ProcAttr) (*Child, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	c := &Child{r: r, pid: pid, done: make(chan struct{})}
	r.children[pid] = c
	return c, nil
}

// Run collects exits whenever SIGCHLD arrives, until ctx is done.
func (r *Reaper) Run(ctx context.Context) {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGCHLD)
	defer signal.Stop(sigc)
	// Children may have exited before Notify was in place; their SIGCHLD is gone.
	r.ReapAll()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sigc:
			// SIGCHLD is not queued: one signal may stand for many exits, hence the loop.
			r.ReapAll()
		}
	}
}

// ReapAll collects every exit that is pending now and returns how many there were.
func (r *Reaper) ReapAll() int {
	n := 0
	for r.reapOne() {
		n++
	}
	return n
}

func (r *Reaper) reapOne() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ws syscall.WaitStatus
	for {
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			// ECHILD: no children at all; 0: none has exited yet.
			return false
		}
		if c, ok := r.children[pid]; ok {
			delete(r.children, pid)
			c.status = ws
			c.exited = true
			close(c.done)
		} else if r.orphan != nil {
			r.orphan(pid, ws)
		}
		return true
	}
}

// Pid returns the child's process id.
func (c *Child) Pid() int { return c.pid }

// Done is closed when the child has exited and was reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Status returns the exit status; it is only meaningful after Done is closed.
func (c *Child) Status() syscall.WaitStatus {
	<-c.done
	return c.status
}

// Signal sends sig to the child. It returns os.ErrProcessDone once the child was reaped.
func (c *Child) Signal(sig syscall.Signal) error {
	return c.kill(c.pid, sig)
}

// SignalGroup sends sig to the process group the child leads (started with Setpgid or Setsid),
// which also reaches the helpers it forked.
func (c *Child) SignalGroup(sig syscall.Signal) error {
	return c.kill(-c.pid, sig)
}

func (c *Child) kill(target int, sig syscall.Signal) error {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if c.exited {
		return os.ErrProcessDone
	}
	if err := syscall.Kill(target, sig); err != nil {
		return fmt.Errorf("kill %d %v: %w", target, sig, err)
	}
	return nil
}

// Describe renders an exit status for people: "exit status 1", "signal killed".
func Describe(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		s := fmt.Sprintf("signal %v", ws.Signal())
		if ws.CoreDump() {
			s += " (core dumped)"
		}
		return s
	default:
		return fmt.Sprintf("wait status %#x", int(ws))
	}
}
