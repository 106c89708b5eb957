package supervise

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/system/reap"
	"github.com/ballast-os/ballast/tests/testutil"
)

// testReaper is the one wait4(-1) loop of this test binary; two would steal each other's exits.
var testReaper *reap.Reaper

func TestMain(m *testing.M) {
	testReaper = reap.New()
	testutil.MainAsSubreaper(m, testReaper)
}

// recorder keeps the events of one supervisor.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) add(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *recorder) matching(f func(Event) bool) []Event {
	var out []Event
	for _, e := range r.all() {
		if f(e) {
			out = append(out, e)
		}
	}
	return out
}

// waitEvents waits until n events match f and returns them.
func (r *recorder) waitEvents(t *testing.T, n int, f func(Event) bool) []Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got := r.matching(f); len(got) >= n {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %d events; have %v", n, r.all())
	return nil
}

func is(id string, st State) func(Event) bool {
	return func(e Event) bool { return e.Service == id && e.State == st }
}

// harness is a supervisor under test with fast timings.
type harness struct {
	sup *Supervisor
	rec *recorder
	out *testutil.Buffer
	con *console.Writer
}

func newHarness(t *testing.T, opts Options, services ...func(h *harness) Service) *harness {
	t.Helper()
	h := &harness{rec: &recorder{}, out: &testutil.Buffer{}}
	h.con = &console.Writer{Out: h.out, Uptime: func() float64 { return 0 }}
	opts.Console = h.con
	opts.OnEvent = h.rec.add
	if opts.ProbeInterval == 0 {
		opts.ProbeInterval = 5 * time.Millisecond
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = Backoff{Initial: time.Millisecond, Max: 8 * time.Millisecond, Reset: 10 * time.Second}
	}
	var svcs []Service
	for _, f := range services {
		svcs = append(svcs, f(h))
	}
	sup, err := New(opts, svcs...)
	if err != nil {
		t.Fatal(err)
	}
	h.sup = sup
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := sup.Stop(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return h
}

// sh is a service running a shell script.
func sh(id, script string, policy RestartPolicy, deps ...string) func(h *harness) Service {
	return func(h *harness) Service {
		return Service{
			ID:      id,
			Depends: deps,
			Restart: policy,
			Runner: &Exec{
				Reaper:  testReaper,
				Path:    "/bin/sh",
				Args:    []string{"-c", script},
				Env:     []string{"PATH=/usr/bin:/bin"},
				Console: h.con,
			},
		}
	}
}

func with(f func(h *harness) Service, mod func(*Service)) func(h *harness) Service {
	return func(h *harness) Service {
		s := f(h)
		mod(&s)
		return s
	}
}

func TestNewRejects(t *testing.T) {
	run := &Exec{}
	tests := []struct {
		name     string
		services []Service
		want     string
	}{
		{"no id", []Service{{Runner: run}}, "without an ID"},
		{"duplicate", []Service{{ID: "a", Runner: run}, {ID: "a", Runner: run}}, "defined twice"},
		{"no runner", []Service{{ID: "a"}}, "no runner"},
		{"unknown dependency", []Service{{ID: "a", Runner: run, Depends: []string{"b"}}}, "unknown service b"},
		{"self", []Service{{ID: "a", Runner: run, Depends: []string{"a"}}}, "cycle a → a"},
		{"cycle", []Service{
			{ID: "a", Runner: run, Depends: []string{"c"}},
			{ID: "b", Runner: run, Depends: []string{"a"}},
			{ID: "c", Runner: run, Depends: []string{"b"}},
		}, "cycle a → c → b → a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{}, tt.services...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestRestartWithBackoff(t *testing.T) {
	ms := time.Millisecond
	h := newHarness(t, Options{Backoff: Backoff{Initial: ms, Max: 8 * ms, Reset: 10 * time.Second}},
		sh("crash", "exit 1", RestartAlways))
	got := h.rec.waitEvents(t, 6, is("crash", StateBackoff))
	var delays []time.Duration
	for _, e := range got[:6] {
		delays = append(delays, e.Delay)
		if !e.Exited || e.Status.ExitStatus() != 1 {
			t.Errorf("backoff event without exit status 1: %+v", e)
		}
	}
	want := []time.Duration{ms, 2 * ms, 4 * ms, 8 * ms, 8 * ms, 8 * ms}
	if !slices.Equal(delays, want) {
		t.Errorf("delays = %v, want %v", delays, want)
	}
	// Each restart waits at least its delay.
	backoffs, runs := got, h.rec.matching(is("crash", StateRunning))
	for i := 0; i < 5 && i+1 < len(runs); i++ {
		if gap := runs[i+1].Time.Sub(backoffs[i].Time); gap < backoffs[i].Delay {
			t.Errorf("restart %d after %v, before its delay %v", i+1, gap, backoffs[i].Delay)
		}
	}
	if !strings.Contains(h.out.String(), "ballast: error: service crash exited: exit status 1, restarting in 1ms") {
		t.Errorf("console lacks the failure line:\n%s", h.out)
	}
}

func TestBackoffResetsAfterUptime(t *testing.T) {
	ms := time.Millisecond
	h := newHarness(t, Options{Backoff: Backoff{Initial: ms, Max: time.Second, Reset: 20 * ms}},
		sh("slow-crash", "sleep 0.05; exit 1", RestartAlways))
	for _, e := range h.rec.waitEvents(t, 3, is("slow-crash", StateBackoff))[:3] {
		if e.Delay != ms {
			t.Errorf("delay after a run longer than Reset = %v, want %v", e.Delay, ms)
		}
	}
}

func TestRestartPolicy(t *testing.T) {
	tests := []struct {
		policy RestartPolicy
		script string
		want   State
	}{
		{RestartNever, "exit 0", StateFinished},
		{RestartNever, "exit 3", StateFailed},
		{RestartNever, "kill -9 $$", StateFailed},
		{RestartOnFailure, "exit 0", StateFinished},
		{RestartOnFailure, "exit 3", StateBackoff},
		{RestartOnFailure, "kill -9 $$", StateBackoff},
		{RestartAlways, "exit 0", StateBackoff},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String()+"/"+tt.script, func(t *testing.T) {
			h := newHarness(t, Options{}, sh("s", tt.script, tt.policy))
			h.rec.waitEvents(t, 1, func(e Event) bool { return e.Service == "s" && e.Exited })
			first := h.rec.matching(func(e Event) bool { return e.Service == "s" && e.Exited })[0]
			if first.State != tt.want {
				t.Errorf("state after exit = %v, want %v", first.State, tt.want)
			}
		})
	}
}

func TestReadinessGatesDependents(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "ready")
	h := newHarness(t, Options{},
		with(sh("db", "sleep 0.1; touch "+flag+"; exec sleep 30", RestartNever), func(s *Service) {
			s.Ready = func(context.Context) error {
				_, err := os.Stat(flag)
				return err
			}
		}),
		// Fails loudly if it were started before db is ready.
		sh("app", "test -e "+flag+" || exit 3; exec sleep 30", RestartNever, "db"),
		sh("web", "exec sleep 30", RestartNever, "app"),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.sup.WaitReady(ctx, "web"); err != nil {
		t.Fatalf("WaitReady(web): %v\n%s", err, h.out)
	}
	var order []string
	for _, e := range h.rec.all() {
		if e.State == StateRunning || e.State == StateReady {
			order = append(order, e.Service+":"+e.State.String())
		}
	}
	want := []string{"db:running", "db:ready", "app:running", "app:ready", "web:running", "web:ready"}
	if !slices.Equal(order, want) {
		t.Errorf("order = %v, want %v", order, want)
	}
}

func TestDependencyFailed(t *testing.T) {
	h := newHarness(t, Options{},
		// Never ready, then gone for good.
		with(sh("base", "sleep 0.05; exit 1", RestartNever), func(s *Service) {
			s.Ready = func(context.Context) error { return errors.New("not yet") }
		}),
		sh("top", "exec sleep 30", RestartAlways, "base"))
	e := h.rec.waitEvents(t, 1, is("top", StateFailed))[0]
	if e.Err == nil || !strings.Contains(e.Err.Error(), "dependency base failed") {
		t.Errorf("top failed with %v", e.Err)
	}
	if err := h.sup.WaitReady(context.Background(), "top"); err == nil {
		t.Error("WaitReady of a failed service succeeded")
	}
	if n := len(h.rec.matching(is("top", StateRunning))); n != 0 {
		t.Errorf("top was started %d times", n)
	}
}

func TestCondition(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, Options{},
		with(sh("gated", "exec sleep 30", RestartNever), func(s *Service) {
			s.Condition = func(ctx context.Context) error {
				select {
				case <-gate:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}))
	time.Sleep(50 * time.Millisecond)
	if n := len(h.rec.matching(is("gated", StateRunning))); n != 0 {
		t.Fatal("started before its condition was met")
	}
	close(gate)
	h.rec.waitEvents(t, 1, is("gated", StateReady))
}

func TestStopInReverseDependencyOrder(t *testing.T) {
	h := newHarness(t, Options{},
		sh("a", "exec sleep 30", RestartAlways),
		sh("b", "exec sleep 30", RestartAlways, "a"),
		sh("c", "exec sleep 30", RestartAlways, "b"),
		sh("other", "exec sleep 30", RestartAlways),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.sup.WaitReady(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := h.sup.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	var chain []string
	for _, e := range h.rec.matching(func(e Event) bool { return e.State == StateStopped }) {
		if e.Service != "other" {
			chain = append(chain, e.Service)
		}
		if !e.Exited || !e.Status.Signaled() || e.Status.Signal() != syscall.SIGTERM {
			t.Errorf("%s stopped with %+v, want SIGTERM", e.Service, e)
		}
	}
	if want := []string{"c", "b", "a"}; !slices.Equal(chain, want) {
		t.Errorf("stop order = %v, want %v", chain, want)
	}
	for _, st := range h.sup.Statuses() {
		if st.State != StateStopped || st.Pid != 0 {
			t.Errorf("after Stop: %+v", st)
		}
	}
}

func TestStopKillsAfterTimeout(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "trapped")
	h := newHarness(t, Options{StopTimeout: 100 * time.Millisecond},
		// The ignored SIGTERM is inherited by sleep, so only SIGKILL ends them. Ready once the
		// trap is set, or SIGTERM could come first.
		with(sh("stubborn", "trap '' TERM; touch "+flag+"; sleep 30; echo survived", RestartAlways), func(s *Service) {
			s.Ready = func(context.Context) error {
				_, err := os.Stat(flag)
				return err
			}
		}))
	h.rec.waitEvents(t, 1, is("stubborn", StateReady))
	begin := time.Now()
	if err := h.sup.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < 100*time.Millisecond || d > 5*time.Second {
		t.Errorf("Stop took %v", d)
	}
	e := h.rec.waitEvents(t, 1, is("stubborn", StateStopped))[0]
	if !e.Exited || e.Status.Signal() != syscall.SIGKILL {
		t.Errorf("stopped with %s, want SIGKILL", reap.Describe(e.Status))
	}
	if strings.Contains(h.out.String(), "survived") {
		t.Error("the forked sleep outlived the group kill")
	}
}

func TestStopSignal(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "trapped")
	h := newHarness(t, Options{StopTimeout: 5 * time.Second},
		// Like an interactive shell: deaf to SIGTERM, gone on SIGHUP.
		with(sh("shell", "trap '' TERM; trap 'exit 0' HUP; touch "+flag+"; while :; do sleep 0.05; done", RestartAlways), func(s *Service) {
			s.StopSignal = syscall.SIGHUP
			s.Ready = func(context.Context) error {
				_, err := os.Stat(flag)
				return err
			}
		}))
	h.rec.waitEvents(t, 1, is("shell", StateReady))
	begin := time.Now()
	if err := h.sup.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Stop took %v: the stop signal was not used", d)
	}
	e := h.rec.waitEvents(t, 1, is("shell", StateStopped))[0]
	if !e.Exited || !e.Status.Exited() || e.Status.ExitStatus() != 0 {
		t.Errorf("stopped with %s, want exit status 0 from the HUP trap", reap.Describe(e.Status))
	}
}

func TestStopDuringBackoffAndWaiting(t *testing.T) {
	h := newHarness(t, Options{Backoff: Backoff{Initial: time.Hour, Max: time.Hour}},
		sh("crash", "exit 1", RestartAlways),
		sh("blocked", "exec sleep 30", RestartAlways, "crash"))
	h.rec.waitEvents(t, 1, is("crash", StateBackoff))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.sup.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, st := range h.sup.Statuses() {
		if st.State != StateStopped {
			t.Errorf("%s is %v after Stop", st.ID, st.State)
		}
	}
}

// lineLog is a LineLogger that keeps the lines.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) Line(text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, text)
}

func (l *lineLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func TestFailureTailFromLog(t *testing.T) {
	log := &lineLog{}
	h := newHarness(t, Options{},
		with(sh("noisy", `i=1; while [ $i -le 30 ]; do echo "line $i"; i=$((i+1)); done; echo oops >&2; exit 2`, RestartNever),
			func(s *Service) { s.Runner.(*Exec).Log = log }))
	h.rec.waitEvents(t, 1, is("noisy", StateFailed))
	out := h.out.String()
	if !strings.Contains(out, "ballast: error: service noisy exited: exit status 2\n") {
		t.Errorf("console lacks the failure line:\n%s", out)
	}
	var tail []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "noisy: ") {
			tail = append(tail, strings.TrimPrefix(l, "noisy: "))
		}
	}
	if len(tail) != DefaultTailLines || tail[0] != "line 12" || tail[len(tail)-1] != "oops" {
		t.Errorf("tail = %q, want line 12 … oops", tail)
	}
	if lines := log.all(); len(lines) != 31 || lines[0] != "line 1" || lines[30] != "oops" {
		t.Errorf("log has %d lines (%q ... ), want 31: line 1 … oops", len(lines), lines)
	}
}

// A logged service's milestone lines ("ballast: ...") reach the console as milestones, and the
// log keeps them with the rest.
func TestMilestonesOfLoggedServices(t *testing.T) {
	log := &lineLog{}
	h := newHarness(t, Options{},
		with(sh("api", `echo "ballast: userdata: applied 2 settings from /dev/vdb"; echo "level=info ballast: not a milestone"; echo plain`, RestartNever),
			func(s *Service) { s.Runner.(*Exec).Log = log }))
	h.rec.waitEvents(t, 1, is("api", StateFinished))
	deadline := time.Now().Add(5 * time.Second)
	for len(log.all()) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	out := h.out.String()
	if !strings.Contains(out, "[  0.000000] ballast: userdata: applied 2 settings from /dev/vdb\n") {
		t.Errorf("console lacks the milestone:\n%s", out)
	}
	if strings.Contains(out, "not a milestone") || strings.Contains(out, "plain") {
		t.Errorf("console has lines that are no milestones:\n%s", out)
	}
	if lines := log.all(); len(lines) != 3 || lines[0] != "ballast: userdata: applied 2 settings from /dev/vdb" {
		t.Errorf("log = %q", lines)
	}
}

func TestOutputToConsolePrefixed(t *testing.T) {
	h := newHarness(t, Options{}, sh("chatty", "echo hello; echo world >&2", RestartNever))
	h.rec.waitEvents(t, 1, is("chatty", StateFinished))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(h.out.String(), "chatty: world\n") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	out := h.out.String()
	for _, want := range []string{"chatty: hello\n", "chatty: world\n", "ballast: service chatty exited: exit status 0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
}

func TestStartError(t *testing.T) {
	h := newHarness(t, Options{}, with(sh("missing", "", RestartNever), func(s *Service) {
		s.Runner.(*Exec).Path = "/nonexistent/program"
	}))
	e := h.rec.waitEvents(t, 1, is("missing", StateFailed))[0]
	if e.Err == nil || !strings.Contains(e.Err.Error(), "/nonexistent/program") {
		t.Errorf("err = %v", e.Err)
	}
	if !strings.Contains(h.out.String(), "ballast: error: service missing:") {
		t.Errorf("console:\n%s", h.out)
	}
}

// openPTY returns the master side and the path of the slave side of a new pseudo-terminal.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	testutil.Need(t, err == nil, "pseudo-terminals (/dev/ptmx, devpts): %v", err)
	t.Cleanup(func() { m.Close() })
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	return m, fmt.Sprintf("/dev/pts/%d", n)
}

func TestTTYSessionLeaderWithControllingTerminal(t *testing.T) {
	master, slave := openPTY(t)
	// /dev/tty opens only for a process with a controlling terminal; field 6 of stat is the
	// session id, which equals the pid of a session leader.
	script := `exec 3</dev/tty && echo ctty-ok; [ "$(cut -d' ' -f6 /proc/$$/stat)" = "$$" ] && echo leader-ok`
	h := newHarness(t, Options{}, with(sh("shell", script, RestartNever), func(s *Service) {
		s.Runner.(*Exec).TTY = slave
	}))
	var got bytes.Buffer
	buf := make([]byte, 256)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(got.String(), "leader-ok") && time.Now().Before(deadline) {
		master.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _ := master.Read(buf)
		got.Write(buf[:n])
	}
	for _, want := range []string{"ctty-ok", "leader-ok"} {
		if !strings.Contains(got.String(), want) {
			t.Errorf("terminal output %q lacks %q; console:\n%s", got.String(), want, h.out)
		}
	}
	h.rec.waitEvents(t, 1, is("shell", StateFinished))
}

func TestRestartOneService(t *testing.T) {
	h := newHarness(t, Options{},
		sh("db", "exec sleep 60", RestartAlways),
		sh("web", "exec sleep 60", RestartAlways, "db"),
		sh("once", "exit 0", RestartOnFailure))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.sup.WaitReady(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	h.rec.waitEvents(t, 1, is("once", StateFinished))
	pids := map[string]int{}
	for _, st := range h.sup.Statuses() {
		pids[st.ID] = st.Pid
	}
	if err := h.sup.Restart(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	for _, st := range h.sup.Statuses() {
		switch st.ID {
		case "db":
			if st.Pid == 0 || st.Pid == pids["db"] || st.Restarts != 1 || !strings.Contains(st.LastExit, "terminated") {
				t.Errorf("db after restart: %+v (old pid %d)", st, pids["db"])
			}
		case "web":
			if st.Pid != pids["web"] || st.Restarts != 0 {
				t.Errorf("web was touched: %+v", st)
			}
		}
	}
	// A finished service runs again.
	if err := h.sup.Restart(ctx, "once"); err != nil {
		t.Fatal(err)
	}
	h.rec.waitEvents(t, 2, is("once", StateFinished))
	if err := h.sup.Restart(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "unknown service nope") {
		t.Errorf("Restart(nope) = %v", err)
	}
}

// StopsBefore orders the stop without ordering the start: the client starts at once, even
// before the daemon is ready, and is stopped before it, though it takes a while to stop.
func TestStopsBefore(t *testing.T) {
	daemon := func(h *harness) Service {
		s := sh("daemon", "exec sleep 30", RestartAlways)(h)
		s.Ready = func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
		return s
	}
	var runner Runner
	client := func(h *harness) Service {
		// It ignores SIGTERM: only the SIGKILL after the stop timeout ends it.
		s := sh("client", "trap '' TERM; while :; do sleep 0.05; done", RestartAlways)(h)
		s.StopsBefore = []string{"daemon"}
		runner = s.Runner
		return s
	}
	h := newHarness(t, Options{StopTimeout: 300 * time.Millisecond}, daemon, client)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.sup.WaitReady(ctx, "client"); err != nil {
		t.Fatalf("the client waited for the daemon: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // the trap is set
	if err := h.sup.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, e := range h.rec.matching(func(e Event) bool { return e.State == StateStopped }) {
		order = append(order, e.Service)
	}
	if want := []string{"client", "daemon"}; !slices.Equal(order, want) {
		t.Errorf("stop order = %v, want %v", order, want)
	}
	if _, err := New(Options{}, Service{ID: "x", Runner: runner, StopsBefore: []string{"nosuch"}}); err == nil {
		t.Error("StopsBefore an unknown service accepted")
	}
}

// Crashes count the ends nobody asked for: exits answered with a restart and failures for good,
// not a Restart or a finished one-shot; they are bounded to the latest MaxCrashes.
func TestCrashes(t *testing.T) {
	h := newHarness(t, Options{},
		sh("crash", "exit 1", RestartAlways),
		sh("clean-loop", "exit 0", RestartAlways),
		sh("fail", "exit 2", RestartNever),
		sh("once", "exit 0", RestartNever),
		sh("steady", "exec sleep 60", RestartAlways))
	h.rec.waitEvents(t, MaxCrashes+4, is("crash", StateBackoff))
	h.rec.waitEvents(t, 2, is("clean-loop", StateBackoff))
	h.rec.waitEvents(t, 1, is("fail", StateFailed))
	h.rec.waitEvents(t, 1, is("once", StateFinished))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.sup.WaitReady(ctx, "steady"); err != nil {
		t.Fatal(err)
	}
	if err := h.sup.Restart(ctx, "steady"); err != nil {
		t.Fatal(err)
	}
	crashes := map[string][]time.Time{}
	for _, st := range h.sup.Statuses() {
		crashes[st.ID] = st.Crashes
	}
	if n := len(crashes["crash"]); n != MaxCrashes {
		t.Errorf("crash: %d crashes, want the latest %d", n, MaxCrashes)
	}
	if !slices.IsSortedFunc(crashes["crash"], func(a, b time.Time) int { return a.Compare(b) }) {
		t.Errorf("crash: crashes out of order: %v", crashes["crash"])
	}
	if len(crashes["clean-loop"]) < 2 {
		t.Errorf("clean-loop: %d crashes, want every restart", len(crashes["clean-loop"]))
	}
	if len(crashes["fail"]) != 1 {
		t.Errorf("fail: %v, want one crash", crashes["fail"])
	}
	if len(crashes["once"]) != 0 || len(crashes["steady"]) != 0 {
		t.Errorf("a finished one-shot or a restart asked for counted: once %v, steady %v", crashes["once"], crashes["steady"])
	}
}
