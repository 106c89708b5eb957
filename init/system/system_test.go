package system

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/system/reap"
	"github.com/ballast-os/ballast/tests/testutil"
)

// testReaper is the one wait4(-1) loop of this test binary.
var testReaper *reap.Reaper

func TestMain(m *testing.M) {
	testReaper = reap.New()
	testutil.MainAsSubreaper(m, testReaper)
}

// fakeKernel records what the init asks of the kernel and does none of it.
type fakeKernel struct {
	mu    sync.Mutex
	calls []string
	busy  map[string]bool  // Unmount fails with EBUSY
	fail  map[string]error // Mount at this target fails
	// failOnce: the next Mount at this target fails, the ones after work
	failOnce map[string]error
	alive    int // kill(-1, 0) finds processes this many times
}

func (k *fakeKernel) record(format string, args ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = append(k.calls, fmt.Sprintf(format, args...))
}

func (k *fakeKernel) log() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.calls...)
}

func (k *fakeKernel) Mount(source, target, fstype string, flags uintptr, data string) error {
	k.record("mount %s %s %s %#x %s", source, target, fstype, flags, data)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err, ok := k.failOnce[target]; ok {
		delete(k.failOnce, target)
		return err
	}
	return k.fail[target]
}

func (k *fakeKernel) Unmount(target string, flags int) error {
	k.record("umount %s", target)
	if k.busy[target] {
		return syscall.EBUSY
	}
	return nil
}

func (k *fakeKernel) Sethostname(name string) error { k.record("hostname %s", name); return nil }
func (k *fakeKernel) DisableCtrlAltDel() error      { k.record("cad off"); return nil }
func (k *fakeKernel) Sync()                         { k.record("sync") }
func (k *fakeKernel) Reboot(cmd int) error          { k.record("reboot %#x", cmd); return nil }

func (k *fakeKernel) KillAll(sig syscall.Signal) error {
	k.record("kill -1 %s", signalName(sig))
	return nil
}

// Processes says a process is left for the first alive calls.
func (k *fakeKernel) Processes() (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.alive > 0 {
		k.alive--
		return 1, nil
	}
	return 0, nil
}

// testInit is an Init on a directory tree with a fake kernel.
func testInit(t *testing.T) (*Init, *fakeKernel, *testutil.Buffer) {
	t.Helper()
	k := &fakeKernel{busy: map[string]bool{}, fail: map[string]error{}, failOnce: map[string]error{}}
	out := &testutil.Buffer{}
	i := New(Config{
		Root:        t.TempDir(),
		Console:     &console.Writer{Out: out, Uptime: func() float64 { return 1.5 }},
		Kernel:      k,
		Reaper:      testReaper,
		LoadModules: func(...string) error { return nil },
		Coldplug:    func() ([]string, error) { return nil, nil },
		Random:      func(context.Context) (string, error) { return "pool ready (test)", nil },
	})
	i.killPoll = 0
	return i, k, out
}

// write puts a file under the Init's root.
func write(t *testing.T, i *Init, path, content string) {
	t.Helper()
	p := i.path(path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdirs(t *testing.T, i *Init, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(i.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestActionFor(t *testing.T) {
	tests := []struct {
		sig  syscall.Signal
		want Action
		ok   bool
	}{
		{syscall.SIGUSR2, PowerOff, true},
		{syscall.SIGTERM, Reboot, true},
		{syscall.SIGINT, Reboot, true},
		{syscall.SIGUSR1, Halt, true},
		{syscall.SIGHUP, 0, false},
		{syscall.SIGPWR, 0, false},
	}
	for _, tt := range tests {
		act, ok := actionFor(tt.sig)
		if act != tt.want || ok != tt.ok {
			t.Errorf("actionFor(%v) = %v, %v; want %v, %v", tt.sig, act, ok, tt.want, tt.ok)
		}
	}
}

func TestCaughtSignalsCoverShutdownRequests(t *testing.T) {
	caught := map[os.Signal]bool{}
	for _, s := range caughtSignals() {
		caught[s] = true
	}
	for _, s := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP} {
		if !caught[s] {
			t.Errorf("%v is not caught", s)
		}
	}
	if caught[syscall.SIGCHLD] {
		t.Error("SIGCHLD belongs to the reaper")
	}
}

func TestOnSignalIgnoresOthers(t *testing.T) {
	i, k, out := testInit(t)
	i.onSignal(syscall.SIGHUP)
	if !strings.Contains(out.String(), "ballast: signal ignoring SIGHUP") || len(k.log()) != 0 {
		t.Errorf("console %q, kernel %q", out, k.log())
	}
}
