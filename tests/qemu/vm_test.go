package qemu

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/testutil"
)

// bootPrereqs skips tests that boot a VM when they cannot or should not run.
func bootPrereqs(t *testing.T) { bootPrereqsArch(t, contract.DefaultArch) }

// bootPrereqsArch is bootPrereqs for a VM of architecture a: its emulator and firmware must be
// installed (under CI, their absence fails the test).
func bootPrereqsArch(t *testing.T, a contract.Arch) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU; skipped with -short")
	}
	err := AvailableArch(a)
	testutil.Need(t, err == nil, "%v", err)
}

// emptyDisk makes a blank raw image: OVMF finds nothing to boot on it and
// falls through to its built-in UEFI shell, which makes a guest that needs
// no Ballast build.
func emptyDisk(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "empty.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(16 << 20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func startVM(t *testing.T, cfg Config) *VM {
	t.Helper()
	if cfg.LogFile == "" {
		cfg.LogFile = filepath.Join(t.TempDir(), "console.log")
	}
	vm, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := vm.Kill(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("console log: %s", cfg.LogFile)
		}
	})
	return vm
}

// TestBootUEFIShell boots OVMF on an empty disk into the UEFI shell, types
// commands and shuts the firmware down from the shell.
func TestBootUEFIShell(t *testing.T) {
	bootPrereqs(t)
	begin := time.Now()
	vm := startVM(t, Config{Disk: emptyDisk(t)})
	t.Logf("started in %s: %s", time.Since(begin).Round(time.Millisecond), vm.CommandLine())

	steps := []struct {
		name string
		send string
		want string
	}{
		{name: "firmware", want: `^BdsDxe: failed to load Boot\d+ "UEFI Misc Device"`},
		{name: "shell", want: `^UEFI Interactive Shell v(\S+)`},
		// Any key skips the 5 s startup.nsh countdown.
		{name: "countdown", want: `Press ESC in \d+ seconds`, send: " "},
		{name: "prompt", want: `^Shell> $`, send: "echo ballast-\"console\"-test\r"},
		// The shell echoes the typed line after the prompt; only the
		// command's output starts a line with this text.
		{name: "echo", want: `^ballast-console-test$`},
	}
	for _, s := range steps {
		sub, err := vm.Expect(regexp.MustCompile(s.want), 0)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		t.Logf("%6.1fs %s: %q", time.Since(begin).Seconds(), s.name, sub)
		if s.send != "" {
			if err := vm.Send(s.send); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Firmware has no ACPI power-button handler: QMP accepts the request and
	// nothing happens.
	if err := vm.Powerdown(); err != nil {
		t.Fatal(err)
	}
	if err := vm.WaitExit(3 * time.Second); err == nil {
		t.Fatalf("firmware honoured system_powerdown; reason %q", vm.ShutdownReason())
	}

	if err := vm.Send("reset -s\r"); err != nil {
		t.Fatal(err)
	}
	if err := vm.WaitExit(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := vm.ShutdownReason(); got != "guest-shutdown" {
		t.Errorf("shutdown reason %q, want guest-shutdown", got)
	}
	t.Logf("%6.1fs powered off from the shell", time.Since(begin).Seconds())
	if !strings.Contains(vm.Console(), "ballast-console-test") {
		t.Errorf("Console() lacks the echo output")
	}
	log, err := os.ReadFile(vm.LogFile())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"=== ", "qemu start: ", "UEFI Interactive Shell", "qemu exit after"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("console log lacks %q:\n%s", want, log)
		}
	}
}

// TestStop ends a freshly started VM each way a test can and checks what
// WaitExit and ShutdownReason then say.
func TestStop(t *testing.T) {
	bootPrereqs(t)
	disk := emptyDisk(t)
	tests := []struct {
		name       string
		timeout    time.Duration // Config.Timeout
		stop       func(*VM) error
		wantErr    string // substring of WaitExit's error; empty: clean exit
		wantReason string
	}{
		{name: "quit", stop: (*VM).Quit, wantReason: "host-qmp-quit"},
		{name: "kill", stop: (*VM).Kill, wantErr: "signal: killed"},
		{name: "timeout", timeout: 2 * time.Second, wantErr: "VM timeout 2s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			begin := time.Now()
			vm := startVM(t, Config{Disk: disk, Snapshot: true, NoNetwork: true, Timeout: tt.timeout})
			if tt.stop != nil {
				if err := tt.stop(vm); err != nil {
					t.Fatal(err)
				}
			}
			err := vm.WaitExit(30 * time.Second)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("WaitExit() = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("WaitExit() = %v, want an error containing %q", err, tt.wantErr)
			}
			if got := vm.ShutdownReason(); got != tt.wantReason {
				t.Errorf("ShutdownReason() = %q, want %q", got, tt.wantReason)
			}
			if err := vm.Send("x"); err == nil {
				t.Error("Send to an exited VM succeeded")
			}
			t.Logf("stopped after %s", time.Since(begin).Round(time.Millisecond))
		})
	}
}

func TestStartErrors(t *testing.T) {
	bootPrereqs(t)
	disk := emptyDisk(t)
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"interactive", Config{Disk: disk, Interactive: true}, "Interactive"},
		{"missing disk", Config{Disk: disk + ".missing"}, "Disk: stat"},
		{"bad option", Config{Disk: disk, NoNetwork: true, ExtraArgs: []string{"-no-such-option"}}, "qemu stderr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm, err := Start(t.Context(), tt.cfg)
			if err == nil {
				_ = vm.Kill()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Start() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
