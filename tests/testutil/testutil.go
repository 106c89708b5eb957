// Package testutil holds what Ballast's tests share: finding the host tools a test needs (a
// missing one skips the test on a developer's machine and fails it in CI, where host-deps must
// have installed it), running commands, and making the test process a subreaper the way PID 1 is.
package testutil

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// InCI reports whether the tests run in CI ($CI set), where nothing may be skipped for want of a
// tool or a privilege.
func InCI() bool { return os.Getenv("CI") != "" }

// Need stops the test when a prerequisite is missing: it skips on a developer's machine and fails
// in CI, naming what is missing and how to get it.
func Need(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("missing prerequisite (CI is set, so this fails rather than skips): %s", msg)
	}
	t.Skipf("missing prerequisite: %s", msg)
}

// Tool returns the path of a host tool, looking in the sbin directories too; a missing tool is
// Need's business. pkg is the Debian package that has it.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := LookPath(name)
	Need(t, err == nil, "%s not found (apt-get install %s, or bash scripts/host-deps.sh)", name, pkg)
	return p
}

// LookPath is exec.LookPath that also searches /usr/sbin and /sbin, which a non-root PATH lacks.
func LookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// Root needs the test to run as root, for mounts, loop devices and namespaces.
func Root(t testing.TB, why string) {
	t.Helper()
	Need(t, os.Geteuid() == 0, "needs root: %s", why)
}

// Run runs a command and returns its combined output; a failure fails the test with the output.
// A bare name is looked up with LookPath, so sbin tools run without root's PATH; whether the tool
// is there at all is for Tool to say first.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	if !strings.Contains(name, "/") {
		if p, err := LookPath(name); err == nil {
			name = p
		}
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Loop attaches img to a free loop device (losetup --find --show, then args, e.g. "-P",
// "--sector-size", "4096" or "--read-only") and detaches it, and any partitions the test added,
// when the test ends.
func Loop(t testing.TB, img string, args ...string) string {
	t.Helper()
	Root(t, "loop devices")
	losetup := Tool(t, "losetup", "mount")
	out, err := exec.Command(losetup, append(append([]string{"--find", "--show"}, args...), img)...).CombinedOutput()
	Need(t, err == nil, "loop devices: losetup: %v: %s", err, out)
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if partx, err := LookPath("partx"); err == nil {
			exec.Command(partx, "-d", loop).Run()
		}
		exec.Command(losetup, "-d", loop).Run()
	})
	return loop
}

// Buffer collects output that processes and goroutines write while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// RepoRoot returns the repository's root directory, found from this file's place in it.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testutil: cannot find the repository root")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Reaper is what MainAsSubreaper runs: something that waits for every child of the process.
type Reaper interface{ Run(ctx context.Context) }

// MainAsSubreaper is a package's TestMain for tests of process supervision: orphaned grandchildren
// come to the test process, as they come to Ballast's PID 1, and reaper collects them while the
// tests run.
func MainAsSubreaper(m *testing.M, reaper Reaper) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "PR_SET_CHILD_SUBREAPER:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go reaper.Run(ctx)
	code := m.Run()
	cancel()
	os.Exit(code)
}
