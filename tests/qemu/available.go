package qemu

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// Available reports whether VMs can be booted with the default Config: it
// names every missing piece and the Debian package that provides it, so a
// skipped test says what to install.
func Available() error {
	return available(DefaultQEMU, DefaultOVMFCode, DefaultOVMFVarsTemplate)
}

func available(qemu, code, vars string) error {
	var errs []error
	if _, err := exec.LookPath(qemu); err != nil {
		errs = append(errs, fmt.Errorf("%s not found in PATH (install Debian package qemu-system-x86): %w", qemu, err))
	}
	for _, f := range []string{code, vars} {
		if _, err := os.Stat(f); err != nil {
			errs = append(errs, fmt.Errorf("OVMF firmware %s missing (install Debian package ovmf): %w", f, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("qemu: cannot boot VMs: %w", errors.Join(errs...))
	}
	return nil
}
