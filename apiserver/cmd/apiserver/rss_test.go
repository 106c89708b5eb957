package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/tests/testutil"
)

// MaxIdleRSS is the apiserver's memory budget at idle: it runs on every host, beside the
// workload.
const MaxIdleRSS = 20 << 20

// startBinary builds the apiserver, starts it on temporary directories with a few settings, and
// returns its process once it answers.
func startBinary(tb testing.TB) *os.Process {
	tb.Helper()
	dir := tb.TempDir()
	bin := filepath.Join(dir, "apiserver")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	for _, d := range []string{"etc", "logs"} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "os-release"), []byte("VERSION_ID=0.1.0\nVARIANT_ID=test\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "cmdline"), []byte("ballast.slot=a\n"), 0o644)
	sock := filepath.Join(dir, "s")
	cmd := exec.Command(bin,
		"--socket", sock, "--allow-uid", strconv.Itoa(os.Getuid()),
		"--datastore", filepath.Join(dir, "ds"), "--etc", filepath.Join(dir, "etc"), "--proc", "",
		"--os-release", filepath.Join(dir, "os-release"), "--cmdline", filepath.Join(dir, "cmdline"),
		"--defaults", "", "--user-data", filepath.Join(dir, "no-user-data"), "--imds-endpoint", "off",
		"--init-socket", filepath.Join(dir, "init.sock"), "--log-dir", filepath.Join(dir, "logs"),
		"--sethostname=false")
	var stderr testutil.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("apiserver's output:\n%s", stderr.String())
		}
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("apiserver exited with %v", err)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			tb.Error("apiserver did not stop on SIGTERM")
		}
	})
	c := client.New(sock)
	defer c.Close()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.OS(ctx); err == nil {
			break
		} else if time.Now().After(deadline) {
			tb.Fatalf("apiserver did not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Some work first, so the idle figure is that of a server that has served.
	for i := range 20 {
		if _, err := c.Set(ctx, []string{fmt.Sprintf("motd=hello %d", i), "kernel.sysctl.vm.swappiness=10", "network.hostname=node-1"}); err != nil {
			tb.Fatal(err)
		}
		if _, err := c.Get(ctx, ""); err != nil {
			tb.Fatal(err)
		}
	}
	return cmd.Process
}

// vmRSS reads a process's resident set size from /proc/<pid>/status.
func vmRSS(tb testing.TB, pid int) int64 {
	tb.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				tb.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	tb.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// TestIdleRSS starts the real binary and checks its resident memory at idle.
func TestIdleRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := startBinary(t)
	time.Sleep(500 * time.Millisecond)
	rss := vmRSS(t, p.Pid)
	t.Logf("idle VmRSS %.1f MiB", float64(rss)/(1<<20))
	if rss > MaxIdleRSS {
		t.Fatalf("idle VmRSS %d bytes is more than the %d budgeted", rss, MaxIdleRSS)
	}
}

// BenchmarkIdleRSS reports the idle resident memory of the real binary as rss-MiB.
func BenchmarkIdleRSS(b *testing.B) {
	p := startBinary(b)
	time.Sleep(500 * time.Millisecond)
	for b.Loop() {
		// Nothing to repeat: the figure is the process's, measured once.
	}
	b.ReportMetric(float64(vmRSS(b, p.Pid))/(1<<20), "rss-MiB")
}
