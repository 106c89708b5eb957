// Package supervise runs a set of services: it starts each once its dependencies are ready,
// watches its readiness, restarts it by policy with exponential backoff, and stops them all in
// reverse dependency order.
//
// A service is a value (Service) with an ID, dependencies, a Runner that starts instances of it,
// a readiness check and a restart policy. Supervisors hold no global state, so a test can run as
// many as it likes.
package supervise

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// Service describes one supervised service.
type Service struct {
	// ID names the service in dependencies, console lines and log file names.
	ID string
	// Depends lists services that must be ready before this one starts (and before each restart).
	Depends []string
	// StopsBefore lists services this one uses without waiting for them to start: it is stopped,
	// and its stop awaited, before theirs begins (a client of a daemon it reconnects to).
	StopsBefore []string
	// Condition, when set, must return nil before the service starts; it blocks until its event
	// has happened or ctx is done. Use it for gates that are not services, such as "the ready line
	// is on the console". An error other than ctx's means the service will not start at all.
	Condition func(ctx context.Context) error
	// Runner starts instances of the service.
	Runner Runner
	// Ready, when set, is polled after each start until it returns nil; until then the service
	// is running but not ready, and its dependents wait. Nil means ready as soon as started.
	Ready func(ctx context.Context) error
	// Restart says whether an exited instance is started again.
	Restart RestartPolicy
	// StopSignal asks the service to stop [SIGTERM]. An interactive shell ignores SIGTERM and
	// wants SIGHUP, as if its terminal hung up.
	StopSignal syscall.Signal
	// StopTimeout is how long Stop waits after StopSignal before SIGKILL; zero takes the
	// supervisor's default.
	StopTimeout time.Duration
}

// Runner starts instances of a service.
type Runner interface {
	// Start launches one instance; id is the service's ID.
	Start(id string) (Instance, error)
}

// Instance is one running incarnation of a service.
type Instance interface {
	Pid() int
	// Signal delivers sig to the instance and everything it started in its process group.
	Signal(sig syscall.Signal) error
	// Done is closed when the instance has exited.
	Done() <-chan struct{}
	// Status is the exit status, once Done is closed.
	Status() syscall.WaitStatus
	// Tail returns the last lines of output worth showing when the instance failed, or nil when
	// its output was on the console already.
	Tail() []string
}

// RestartPolicy says when an exited instance is started again.
type RestartPolicy int

const (
	// RestartAlways restarts after any exit.
	RestartAlways RestartPolicy = iota
	// RestartOnFailure restarts after a non-zero exit or a death by signal.
	RestartOnFailure
	// RestartNever leaves the service finished (exit 0) or failed.
	RestartNever
)

func (p RestartPolicy) String() string {
	switch p {
	case RestartAlways:
		return "always"
	case RestartOnFailure:
		return "on-failure"
	case RestartNever:
		return "never"
	}
	return fmt.Sprintf("RestartPolicy(%d)", int(p))
}

// restarts reports whether the policy restarts after an exit that failed or not.
func (p RestartPolicy) restarts(failed bool) bool {
	switch p {
	case RestartAlways:
		return true
	case RestartOnFailure:
		return failed
	}
	return false
}

// State is where a service is in its life.
type State int

const (
	StateWaiting  State = iota // for dependencies or its condition
	StateRunning               // started, not ready yet
	StateReady                 // started and its readiness check passed
	StateBackoff               // exited; waiting to be restarted
	StateStopping              // Stop sent its stop signal (or waits for its dependents first)
	StateStopped               // stopped by Stop
	StateFinished              // exited with status 0 and the policy does not restart it
	StateFailed                // failed and the policy does not restart it, or could not start
)

var stateNames = [...]string{"waiting", "running", "ready", "backoff", "stopping", "stopped", "finished", "failed"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// terminal reports whether the service will not change state again.
func (s State) terminal() bool {
	return s == StateStopped || s == StateFinished || s == StateFailed
}

// satisfies reports whether dependents of a service in this state may start. A finished service
// did its job (a one-shot), so it counts as well as a ready one.
func (s State) satisfies() bool {
	return s == StateReady || s == StateFinished
}

// Event reports a state change; Supervisor's OnEvent option receives them in order.
type Event struct {
	Service string
	State   State
	Pid     int                // of the instance, in running, ready and after an exit
	Status  syscall.WaitStatus // exit status, when the change follows an exit
	Exited  bool               // whether Status is set
	Delay   time.Duration      // until the restart, in backoff
	Err     error              // why, in failed
	Time    time.Time
}

// Status is a snapshot of one service.
type Status struct {
	ID       string
	State    State
	Pid      int    // of the current instance, 0 when none runs
	Restarts int    // instances started after the first
	LastExit string // how the previous instance ended, "" if none did
	Err      error  // why the service failed
	// Crashes are when instances ended by themselves (or could not start) and were restarted for
	// it or given up on, the latest MaxCrashes, oldest first; stops and restarts asked for are not
	// among them. A daemon that exits with status 0 and is restarted counts: a restart loop is one
	// whatever the status.
	Crashes []time.Time
}

// MaxCrashes bounds Status.Crashes.
const MaxCrashes = 16
