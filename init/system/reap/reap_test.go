package reap

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/testutil"
)

// orphans records exits the Reaper did not start. It is filled by the Reaper shared by all tests
// of this binary: a second wait4(-1) loop in the same process would steal exits.
type orphans struct {
	mu   sync.Mutex
	seen map[int]syscall.WaitStatus
}

func (o *orphans) record(pid int, ws syscall.WaitStatus) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen[pid] = ws
}

func (o *orphans) get(pid int) (syscall.WaitStatus, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ws, ok := o.seen[pid]
	return ws, ok
}

var (
	testOrphans = &orphans{seen: map[int]syscall.WaitStatus{}}
	testReaper  *Reaper
)

func TestMain(m *testing.M) {
	testReaper = New(WithOrphanHandler(testOrphans.record))
	testutil.MainAsSubreaper(m, testReaper)
}

func start(t *testing.T, script string) *Child {
	t.Helper()
	c, err := testReaper.Start("/bin/sh", []string{"sh", "-c", script}, &syscall.ProcAttr{
		Env:   []string{"PATH=/usr/bin:/bin"},
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wait(t *testing.T, c *Child) syscall.WaitStatus {
	t.Helper()
	select {
	case <-c.Done():
		return c.Status()
	case <-time.After(10 * time.Second):
		t.Fatalf("pid %d: no exit routed", c.Pid())
		return 0
	}
}

func TestExitStatusRouted(t *testing.T) {
	tests := []struct {
		script string
		want   string
	}{
		{"exit 0", "exit status 0"},
		{"exit 7", "exit status 7"},
		{"kill -9 $$", "signal killed"},
		{"kill -TERM $$", "signal terminated"},
	}
	for _, tt := range tests {
		t.Run(tt.script, func(t *testing.T) {
			if got := Describe(wait(t, start(t, tt.script))); got != tt.want {
				t.Errorf("status = %q, want %q", got, tt.want)
			}
		})
	}
}

// Many children exiting at once coalesce SIGCHLDs; each status must still reach its own child.
func TestManyChildren(t *testing.T) {
	const n = 60
	children := make([]*Child, n)
	for i := range children {
		children[i] = start(t, "exit "+strconv.Itoa(i))
	}
	for i, c := range children {
		if ws := wait(t, c); !ws.Exited() || ws.ExitStatus() != i {
			t.Errorf("child %d: %s", i, Describe(ws))
		}
	}
}

func TestOrphanReaped(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The shell backgrounds a sleep, records its pid and exits; the sleep becomes our orphan.
	c := start(t, "sleep 0.2 & echo $! > "+pidFile)
	wait(t, c)
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ws, ok := testOrphans.get(pid); ok {
			if !ws.Exited() || ws.ExitStatus() != 0 {
				t.Errorf("orphan %d: %s", pid, Describe(ws))
			}
			// Reaped means gone: no zombie is left behind.
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("orphan %d still exists: kill 0 = %v", pid, err)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("orphan %d was not reaped", pid)
}

func TestSignal(t *testing.T) {
	c := start(t, "sleep 30 & wait")
	if err := c.SignalGroup(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if ws := wait(t, c); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("status = %s, want SIGTERM", Describe(ws))
	}
	if err := c.Signal(syscall.SIGKILL); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after exit = %v, want ErrProcessDone", err)
	}
}

func TestStartError(t *testing.T) {
	_, err := testReaper.Start("/nonexistent/prog", []string{"prog"}, &syscall.ProcAttr{})
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("err = %v, want ENOENT", err)
	}
}
