package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A zombie child is collected by reap: wait4 on its pid then finds no such child.
func TestReap(t *testing.T) {
	pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	got := 0
	for got == 0 && time.Now().Before(deadline) {
		got = reap()
		time.Sleep(10 * time.Millisecond)
	}
	if got != 1 {
		t.Fatalf("reap collected %d children, want 1", got)
	}
	if _, err := syscall.Wait4(pid, nil, syscall.WNOHANG, nil); !errors.Is(err, syscall.ECHILD) {
		t.Fatalf("wait4(%d) after reap: %v, want ECHILD", pid, err)
	}
}

func TestLoop(t *testing.T) {
	for _, tt := range []struct {
		name  string
		sigs  []os.Signal
		reaps int
	}{
		{"term", []os.Signal{syscall.SIGTERM}, 0},
		{"int", []os.Signal{syscall.SIGINT}, 0},
		{"children then term", []os.Signal{syscall.SIGCHLD, syscall.SIGHUP, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGCHLD}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ch := make(chan os.Signal, len(tt.sigs))
			for _, s := range tt.sigs {
				ch <- s
			}
			reaps := 0
			if code := loop(ch, func() int { reaps++; return 0 }); code != 0 {
				t.Errorf("exit code %d", code)
			}
			if reaps != tt.reaps {
				t.Errorf("reaped %d times, want %d", reaps, tt.reaps)
			}
		})
	}
}

// The built program keeps running through other signals and exits 0 on SIGTERM.
func TestProgram(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pause")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	time.Sleep(200 * time.Millisecond) // let it install its handlers
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("pause exited on SIGHUP: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("pause on SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("pause did not exit on SIGTERM")
	}
}
