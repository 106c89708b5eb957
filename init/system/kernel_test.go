package system

import (
	"os"
	"path/filepath"
	"testing"
)

// countProcesses must count user processes only: kill(-1, 0) cannot, because kernel threads
// always answer it, which made every shutdown wait its full 7 s and report processes left.
func TestCountProcesses(t *testing.T) {
	proc := t.TempDir()
	stat := func(pid, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, "stat"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stat("1", "1 (init) S 0 1 1 0 -1 4194560 0 0")
	stat("2", "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0")          // PF_KTHREAD
	stat("15", "15 (kworker/0:1-events) I 2 0 0 0 -1 69238880") // PF_KTHREAD
	stat("200", "200 (containerd) S 1 200 200 0 -1 4194560 0 0")
	stat("201", "201 (a) b (c)) R 1 201 201 0 -1 4194304 0 0") // a command with spaces and ')'
	stat("202", "202 (gone) Z 1 202 202 0 -1 4227084 0 0")     // a zombie holds nothing
	os.MkdirAll(filepath.Join(proc, "self"), 0o755)
	os.MkdirAll(filepath.Join(proc, "300"), 0o755) // ended while looked at: no stat
	n, err := countProcesses(proc)
	if err != nil || n != 2 {
		t.Errorf("countProcesses = %d, %v; want 2 (containerd and the odd name)", n, err)
	}
	stat("203", "203 (broken")
	if _, err := countProcesses(proc); err == nil {
		t.Error("a stat without ')' was accepted")
	}

	// On this machine: this test process at least, and fewer than all entries (kernel threads).
	n, err = countProcesses("/proc")
	if err != nil || n < 1 {
		t.Errorf("countProcesses(/proc) = %d, %v", n, err)
	}
}
