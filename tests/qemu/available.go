package qemu

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/ballast-os/ballast/contract"
)

// Available reports whether VMs can be booted with the default Config: it
// names every missing piece and the Debian package that provides it, so a
// skipped test says what to install. AvailableArch does the same for
// another architecture.
func Available() error {
	return AvailableArch(contract.DefaultArch)
}

func available(qemu, qemuPackage, code, vars, firmwarePackage string) error {
	var errs []error
	if _, err := exec.LookPath(qemu); err != nil {
		errs = append(errs, fmt.Errorf("%s not found in PATH (install Debian package %s): %w", qemu, qemuPackage, err))
	}
	for _, f := range []string{code, vars} {
		if _, err := os.Stat(f); err != nil {
			errs = append(errs, fmt.Errorf("UEFI firmware %s missing (install Debian package %s): %w", f, firmwarePackage, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("qemu: cannot boot VMs: %w", errors.Join(errs...))
	}
	return nil
}
