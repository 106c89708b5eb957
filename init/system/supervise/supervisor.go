package supervise

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/system/reap"
)

// Options tune a Supervisor; zero fields take the defaults in brackets.
type Options struct {
	// Console receives milestones and failure reports [console.Default].
	Console *console.Writer
	// Backoff spaces restarts [100 ms doubling to 30 s, reset after 30 s up].
	Backoff Backoff
	// StopTimeout is the wait between SIGTERM and SIGKILL when stopping [10 s].
	StopTimeout time.Duration
	// KillTimeout is how long to wait for an exit after SIGKILL before giving up [5 s].
	KillTimeout time.Duration
	// ProbeInterval is the longest pause between readiness checks [100 ms]; the first ones come
	// sooner.
	ProbeInterval time.Duration
	// ProbeTimeout bounds one readiness check [2 s].
	ProbeTimeout time.Duration
	// ReadyWarn is how long a service may stay not ready before the console hears about it [30 s].
	ReadyWarn time.Duration
	// OnEvent, when set, receives every state change in order. It is called with the
	// supervisor's lock held and must not call the Supervisor.
	OnEvent func(Event)
}

func (o Options) withDefaults() Options {
	if o.Console == nil {
		o.Console = console.Default
	}
	o.Backoff = o.Backoff.withDefaults()
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.StopTimeout, 10*time.Second)
	def(&o.KillTimeout, 5*time.Second)
	def(&o.ProbeInterval, 100*time.Millisecond)
	def(&o.ProbeTimeout, 2*time.Second)
	def(&o.ReadyWarn, 30*time.Second)
	return o
}

// Supervisor runs a fixed set of services.
type Supervisor struct {
	opts       Options
	order      []string            // dependencies before dependents
	dependents map[string][]string // service → services that depend on it

	// ctx is cancelled by Stop: it ends waits, probes and backoffs, but instances are stopped
	// one by one in dependency order, not through ctx.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	entries  map[string]*entry
	changed  chan struct{} // closed and replaced on every state change
	started  bool
	stopping bool
}

type entry struct {
	svc      Service
	state    State
	inst     Instance
	restarts int
	lastExit string
	err      error
	crashes  []time.Time   // Status.Crashes
	attempts int           // start attempts so far, for Restart to wait on
	kick     chan struct{} // Restart's request to stop the instance (or end the backoff) now
}

// New checks the services (unique IDs, known dependencies, no cycles) and returns a Supervisor
// that has not started anything yet.
func New(opts Options, services ...Service) (*Supervisor, error) {
	s := &Supervisor{
		opts:       opts.withDefaults(),
		dependents: map[string][]string{},
		entries:    map[string]*entry{},
		changed:    make(chan struct{}),
	}
	for _, svc := range services {
		if svc.ID == "" {
			return nil, errors.New("supervise: service without an ID")
		}
		if _, dup := s.entries[svc.ID]; dup {
			return nil, fmt.Errorf("supervise: service %s defined twice", svc.ID)
		}
		if svc.Runner == nil {
			return nil, fmt.Errorf("supervise: service %s has no runner", svc.ID)
		}
		s.entries[svc.ID] = &entry{svc: svc, kick: make(chan struct{}, 1)}
	}
	for _, svc := range services {
		for _, d := range svc.Depends {
			if _, ok := s.entries[d]; !ok {
				return nil, fmt.Errorf("supervise: service %s depends on unknown service %s", svc.ID, d)
			}
			s.dependents[d] = append(s.dependents[d], svc.ID)
		}
		for _, d := range svc.StopsBefore {
			if _, ok := s.entries[d]; !ok {
				return nil, fmt.Errorf("supervise: service %s stops before unknown service %s", svc.ID, d)
			}
			s.dependents[d] = append(s.dependents[d], svc.ID)
		}
	}
	order, err := topoOrder(services)
	if err != nil {
		return nil, err
	}
	s.order = order
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// topoOrder returns the IDs with every service after its dependencies, or the cycle it found.
func topoOrder(services []Service) ([]string, error) {
	byID := map[string]Service{}
	for _, svc := range services {
		byID[svc.ID] = svc
	}
	const (
		unvisited = iota
		visiting
		done
	)
	mark := map[string]int{}
	var order, path []string
	var visit func(id string) error
	visit = func(id string) error {
		switch mark[id] {
		case done:
			return nil
		case visiting:
			i := slices.Index(path, id)
			return fmt.Errorf("supervise: dependency cycle %s", strings.Join(append(path[i:], id), " → "))
		}
		mark[id] = visiting
		path = append(path, id)
		for _, d := range byID[id].Depends {
			if err := visit(d); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		mark[id] = done
		order = append(order, id)
		return nil
	}
	for _, svc := range services {
		if err := visit(svc.ID); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// Start launches every service; each waits for its dependencies by itself. It returns at once.
func (s *Supervisor) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("supervise: already started")
	}
	if s.stopping {
		return errors.New("supervise: stopped")
	}
	s.started = true
	for _, id := range s.order {
		e := s.entries[id]
		s.wg.Add(1)
		go s.run(e)
	}
	return nil
}

// Stop stops all services, each only after the services that depend on it: its stop signal
// (SIGTERM), then SIGKILL after the stop timeout. It returns when all are stopped or ctx is done.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		var left []string
		for _, st := range s.Statuses() {
			if !st.State.terminal() {
				left = append(left, st.ID)
			}
		}
		return fmt.Errorf("supervise: stop: %w; still running: %s", ctx.Err(), strings.Join(left, ", "))
	}
}

// WaitReady blocks until the service is ready (or finished successfully). It fails when the
// service can no longer become ready, or when ctx is done.
func (s *Supervisor) WaitReady(ctx context.Context, id string) error {
	return s.waitFor(ctx, func() (bool, error) {
		e, ok := s.entries[id]
		if !ok {
			return false, fmt.Errorf("supervise: unknown service %s", id)
		}
		if e.state.satisfies() {
			return true, nil
		}
		if e.state.terminal() {
			return false, fmt.Errorf("supervise: service %s is %s", id, e.state)
		}
		return false, nil
	})
}

// Statuses returns a snapshot of all services in dependency order.
func (s *Supervisor) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.order))
	for _, id := range s.order {
		e := s.entries[id]
		st := Status{ID: id, State: e.state, Restarts: e.restarts, LastExit: e.lastExit, Err: e.err,
			Crashes: slices.Clone(e.crashes)}
		if e.inst != nil {
			st.Pid = e.inst.Pid()
		}
		out = append(out, st)
	}
	return out
}

// Restart stops the service's instance (its stop signal, SIGKILL after its stop timeout) and
// starts it again at once, without backoff and without touching its dependents. A service in
// backoff starts at once; a finished or failed one starts again; one still waiting for its
// dependencies is left to start by itself. It returns once the new instance was started (not
// necessarily ready) or its start failed, or when ctx is done.
func (s *Supervisor) Restart(ctx context.Context, id string) error {
	s.mu.Lock()
	e, ok := s.entries[id]
	switch {
	case !ok:
		s.mu.Unlock()
		return fmt.Errorf("supervise: unknown service %s", id)
	case !s.started || s.stopping:
		s.mu.Unlock()
		return fmt.Errorf("supervise: restart %s: supervisor is not running", id)
	}
	n := e.attempts
	switch e.state {
	case StateWaiting:
		s.mu.Unlock()
		return nil
	case StateFinished, StateFailed:
		// Its run has returned: begin a new one, with no stale request pending.
		select {
		case <-e.kick:
		default:
		}
		e.restarts++
		e.err = nil
		s.setLocked(e, StateWaiting, Event{})
		s.wg.Add(1)
		go s.run(e)
	default:
		select {
		case e.kick <- struct{}{}:
		default: // a restart is pending already; wait for it too
		}
	}
	s.mu.Unlock()
	return s.waitFor(ctx, func() (bool, error) {
		if e.attempts > n {
			return true, nil
		}
		if e.state.terminal() {
			return false, fmt.Errorf("supervise: restart %s: service is %s", id, e.state)
		}
		return false, nil
	})
}

// waitFor calls cond with the lock held after every state change until it is true or fails.
func (s *Supervisor) waitFor(ctx context.Context, cond func() (bool, error)) error {
	for {
		s.mu.Lock()
		ok, err := cond()
		ch := s.changed
		s.mu.Unlock()
		if ok || err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// crashed records an instance's end that nobody asked for; s.mu must be held.
func (e *entry) crashed(at time.Time) {
	if len(e.crashes) == MaxCrashes {
		e.crashes = append(e.crashes[:0], e.crashes[1:]...)
	}
	e.crashes = append(e.crashes, at)
}

// setLocked moves e to a new state, tells OnEvent and wakes waiters; s.mu must be held.
func (s *Supervisor) setLocked(e *entry, st State, ev Event) {
	e.state = st
	ev.Service = e.svc.ID
	ev.State = st
	ev.Time = time.Now()
	if s.opts.OnEvent != nil {
		s.opts.OnEvent(ev)
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Supervisor) set(e *entry, st State, ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setLocked(e, st, ev)
}

// run is the life of one service: wait, start, watch, restart, until stopped or done.
func (s *Supervisor) run(e *entry) {
	defer s.wg.Done()
	id := e.svc.ID
	var delay time.Duration
	for first := true; ; first = false {
		if !first {
			s.mu.Lock()
			e.restarts++
			s.mu.Unlock()
		}
		s.set(e, StateWaiting, Event{})
		if err := s.waitStartable(e); err != nil {
			if s.ctx.Err() != nil {
				s.set(e, StateStopped, Event{})
				return
			}
			s.mu.Lock()
			e.err = err
			s.setLocked(e, StateFailed, Event{Err: err})
			s.mu.Unlock()
			s.opts.Console.Errorf("service %s will not start: %v", id, err)
			return
		}

		var ev Event
		var uptime time.Duration
		failed := true
		// This start answers any Restart asked for since the last one.
		select {
		case <-e.kick:
		default:
		}
		inst, err := e.svc.Runner.Start(id)
		s.mu.Lock()
		e.attempts++
		s.mu.Unlock()
		if err != nil {
			ev.Err = err
		} else {
			started := time.Now()
			switch s.watch(e, inst) {
			case watchStopped:
				return
			case watchRestart:
				delay = 0
				continue
			}
			uptime = time.Since(started)
			ws := inst.Status()
			failed = !ws.Exited() || ws.ExitStatus() != 0
			ev = Event{Pid: inst.Pid(), Status: ws, Exited: true}
			s.mu.Lock()
			e.inst = nil
			e.lastExit = reap.Describe(ws)
			s.mu.Unlock()
			if failed {
				ev.Err = fmt.Errorf("exited: %s", reap.Describe(ws))
			}
		}

		if s.ctx.Err() != nil {
			s.set(e, StateStopped, ev)
			return
		}
		if !e.svc.Restart.restarts(failed) {
			s.report(e, inst, ev, "")
			if failed {
				s.mu.Lock()
				e.err = ev.Err
				e.crashed(time.Now())
				s.setLocked(e, StateFailed, ev)
				s.mu.Unlock()
			} else {
				s.set(e, StateFinished, ev)
			}
			return
		}
		delay = s.opts.Backoff.Next(delay, uptime)
		s.report(e, inst, ev, fmt.Sprintf(", restarting in %v", delay))
		ev.Delay = delay
		s.mu.Lock()
		e.crashed(time.Now())
		s.setLocked(e, StateBackoff, ev)
		s.mu.Unlock()
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-e.kick:
			t.Stop()
			delay = 0
		case <-s.ctx.Done():
			t.Stop()
			s.set(e, StateStopped, Event{})
			return
		}
	}
}

// waitStartable blocks until the dependencies are satisfied and the condition is met.
func (s *Supervisor) waitStartable(e *entry) error {
	err := s.waitFor(s.ctx, func() (bool, error) {
		for _, d := range e.svc.Depends {
			dep := s.entries[d]
			if dep.state == StateFailed {
				return false, fmt.Errorf("dependency %s failed", d)
			}
			if !dep.state.satisfies() {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if e.svc.Condition != nil {
		if err := e.svc.Condition(s.ctx); err != nil {
			return fmt.Errorf("condition: %w", err)
		}
	}
	return nil
}

// How watch ended.
const (
	watchExited  = iota // the instance exited by itself
	watchStopped        // Stop stopped it
	watchRestart        // Restart stopped it, to be started again at once
)

// watch follows a started instance until it exits, Stop stops it or Restart asks to stop it.
func (s *Supervisor) watch(e *entry, inst Instance) int {
	id := e.svc.ID
	s.mu.Lock()
	e.inst = inst
	s.setLocked(e, StateRunning, Event{Pid: inst.Pid()})
	s.mu.Unlock()
	s.opts.Console.Milestone("service", "%s started pid=%d", id, inst.Pid())

	probeCtx, cancelProbe := context.WithCancel(s.ctx)
	defer cancelProbe()
	go s.probe(probeCtx, e, inst)

	select {
	case <-inst.Done():
		return watchExited
	case <-e.kick:
		cancelProbe()
		s.set(e, StateStopping, Event{Pid: inst.Pid()})
		s.opts.Console.Milestone("service", "%s restarting", id)
		s.stopInstance(e, inst)
		s.mu.Lock()
		e.inst = nil
		if isDone(inst) {
			e.lastExit = reap.Describe(inst.Status())
		}
		s.mu.Unlock()
		return watchRestart
	case <-s.ctx.Done():
	}
	cancelProbe()
	s.terminate(e, inst)
	s.mu.Lock()
	e.inst = nil
	ev := Event{Pid: inst.Pid()}
	select {
	case <-inst.Done():
		ev.Status, ev.Exited = inst.Status(), true
		e.lastExit = reap.Describe(ev.Status)
	default:
	}
	s.setLocked(e, StateStopped, ev)
	s.mu.Unlock()
	s.opts.Console.Milestone("service", "%s stopped", id)
	return watchStopped
}

// probe polls the readiness check of one instance until it passes or the instance is gone.
func (s *Supervisor) probe(ctx context.Context, e *entry, inst Instance) {
	id := e.svc.ID
	if e.svc.Ready != nil {
		warnAt := time.Now().Add(s.opts.ReadyWarn)
		// Checks start close together and back off to ProbeInterval: a service is usually ready
		// soon after its start, and every check saved there is boot time saved.
		interval := min(10*time.Millisecond, s.opts.ProbeInterval)
		for {
			pctx, cancel := context.WithTimeout(ctx, s.opts.ProbeTimeout)
			err := e.svc.Ready(pctx)
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			if !warnAt.IsZero() && time.Now().After(warnAt) {
				s.opts.Console.Errorf("service %s not ready after %v: %v", id, s.opts.ReadyWarn, err)
				warnAt = time.Time{}
			}
			t := time.NewTimer(interval)
			interval = min(2*interval, s.opts.ProbeInterval)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
	}
	s.mu.Lock()
	// The instance may have exited, or Stop begun, while the last check ran.
	if e.inst == inst && e.state == StateRunning && ctx.Err() == nil && !isDone(inst) {
		// Printed before dependents and WaitReady callers wake, so the console keeps the order.
		s.opts.Console.Milestone("service", "%s ready", id)
		s.setLocked(e, StateReady, Event{Pid: inst.Pid()})
	}
	s.mu.Unlock()
}

// terminate stops one instance once everything that depends on its service has stopped.
func (s *Supervisor) terminate(e *entry, inst Instance) {
	id := e.svc.ID
	s.set(e, StateStopping, Event{Pid: inst.Pid()})
	// Dependents stop within their own bounded timeouts, so this wait ends.
	_ = s.waitFor(context.Background(), func() (bool, error) {
		for _, d := range s.dependents[id] {
			if !s.entries[d].state.terminal() {
				return false, nil
			}
		}
		return true, nil
	})
	s.stopInstance(e, inst)
}

// stopInstance ends one instance: its stop signal, then SIGKILL after its stop timeout.
func (s *Supervisor) stopInstance(e *entry, inst Instance) {
	id := e.svc.ID
	select {
	case <-inst.Done():
		return
	default:
	}
	timeout := e.svc.StopTimeout
	if timeout <= 0 {
		timeout = s.opts.StopTimeout
	}
	sig := e.svc.StopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	if err := inst.Signal(sig); err != nil {
		s.opts.Console.Errorf("service %s: stop: %v", id, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-inst.Done():
		return
	case <-t.C:
	}
	s.opts.Console.Errorf("service %s did not stop within %v; killing it", id, timeout)
	if err := inst.Signal(syscall.SIGKILL); err != nil {
		s.opts.Console.Errorf("service %s: kill: %v", id, err)
	}
	k := time.NewTimer(s.opts.KillTimeout)
	defer k.Stop()
	select {
	case <-inst.Done():
	case <-k.C:
		s.opts.Console.Errorf("service %s (pid %d) did not exit after SIGKILL", id, inst.Pid())
	}
}

// report tells the console how an instance ended (or why it did not start) and, after a
// failure, what it last said.
func (s *Supervisor) report(e *entry, inst Instance, ev Event, next string) {
	id := e.svc.ID
	switch {
	case !ev.Exited:
		s.opts.Console.Errorf("service %s: %v%s", id, ev.Err, next)
	case ev.Err == nil:
		s.opts.Console.Milestone("service", "%s exited: %s%s", id, reap.Describe(ev.Status), next)
	default:
		s.opts.Console.Errorf("service %s %v%s", id, ev.Err, next)
		for _, line := range inst.Tail() {
			s.opts.Console.Raw(id + ": " + line)
		}
	}
}

func isDone(inst Instance) bool {
	select {
	case <-inst.Done():
		return true
	default:
		return false
	}
}
