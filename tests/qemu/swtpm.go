package qemu

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// StartSWTPM runs a software TPM 2.0 on state for one QEMU process. swtpm serves a single VM
// and ends when QEMU shuts it down; a machine reboot inside the VM keeps it (QEMU resets it
// through the control channel), as a real TPM survives a warm reboot.
func StartSWTPM(bin, state, sock, logFile string) (*exec.Cmd, error) {
	if err := os.MkdirAll(state, 0o700); err != nil {
		return nil, fmt.Errorf("qemu: swtpm state %s: %w", state, err)
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("qemu: %s not found (install Debian packages swtpm and swtpm-tools): %w", bin, err)
	}
	args := []string{"socket", "--tpm2",
		"--tpmstate", "dir=" + state,
		"--ctrl", "type=unixio,path=" + sock,
		"--flags", "not-need-init",
	}
	if logFile != "" {
		args = append(args, "--log", "file="+logFile+",level=1")
	}
	cmd := exec.Command(path, args...)
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("qemu: start swtpm: %w", err)
	}
	// QEMU connects at once and fails if the socket is not there yet.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return cmd, nil
		}
		if cmd.ProcessState != nil || time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, errors.New("qemu: swtpm did not create its socket " + sock + " within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TPMSocketPath is where Start puts swtpm's socket: in the VM's private directory.
func TPMSocketPath(dir string) string { return filepath.Join(dir, "swtpm.sock") }
