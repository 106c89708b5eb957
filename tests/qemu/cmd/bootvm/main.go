// Command bootvm boots a disk image under QEMU and UEFI firmware (OVMF, or
// AAVMF for --arch arm64) with the serial console on the terminal, for
// `make run`. It builds the same machine as the image tests
// (qemu.Config.Args). Ctrl-A X quits; Ctrl-A C toggles the QEMU monitor.
//
//	bootvm --disk out/disk.raw [--arch arm64] [--extra-disk cidata.iso] [--hostfwd tcp:127.0.0.1:50443-:50443] [--mem 2048]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/qemu"
)

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

func main() {
	code, err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bootvm:", err)
	}
	os.Exit(code)
}

// run returns QEMU's exit code, or 2 with an error when QEMU could not run.
func run(args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("bootvm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg        qemu.Config
		extra, fwd listFlag
		printOnly  bool
		arch       string
	)
	fs.StringVar(&arch, "arch", string(contract.DefaultArch), fmt.Sprintf("guest architecture, one of %v (arm64: qemu-system-aarch64, virt, AAVMF; console ttyAMA0)", contract.Archs()))
	fs.StringVar(&cfg.Disk, "disk", "", "disk image to boot (required; the guest writes to it unless --snapshot)")
	fs.Var(&extra, "extra-disk", "read-only extra disk, e.g. a cidata volume (repeatable)")
	fs.Var(&fwd, "hostfwd", "user-network host forward, e.g. tcp:127.0.0.1:50443-:50443 (repeatable)")
	fs.IntVar(&cfg.MemoryMB, "mem", qemu.DefaultMemoryMB, "guest memory in MiB")
	fs.IntVar(&cfg.CPUs, "cpus", qemu.DefaultCPUs, "guest CPUs")
	fs.BoolVar(&cfg.Snapshot, "snapshot", false, "discard the guest's writes to --disk")
	fs.BoolVar(&cfg.NoNetwork, "no-network", false, "no NIC")
	noReboot := fs.Bool("no-reboot", false, "exit instead of rebooting the guest")
	fs.StringVar(&cfg.OVMFCode, "ovmf-code", "", "UEFI firmware code (default "+qemu.DefaultOVMFCode+", or "+qemu.SecureBootOVMFCode+" with --secure-boot; "+qemu.DefaultAAVMFCode+" on arm64)")
	fs.StringVar(&cfg.OVMFVars, "ovmf-vars", "", "persistent UEFI variable store, created from the template if missing (default: a fresh copy per run)")
	fs.StringVar(&cfg.OVMFVarsTemplate, "ovmf-vars-template", "", "pristine UEFI variable store copied for each run (default "+qemu.DefaultOVMFVarsTemplate+"; "+qemu.DefaultAAVMFVarsTemplate+" on arm64)")
	fs.BoolVar(&cfg.SecureBoot, "secure-boot", false, "boot OVMF's Secure Boot build (setup mode with a fresh variable store: a signed image enrolls its keys); amd64 only")
	fs.StringVar(&cfg.TPMState, "tpm", "", "give the guest a software TPM 2.0 (swtpm) whose state lives in this directory")
	fs.BoolVar(&printOnly, "print", false, "print the QEMU command line and exit (it names the vars template where a run uses a fresh copy)")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if cfg.Disk == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2, errors.New("--disk is required and there are no positional arguments")
	}
	a, err := contract.ParseArch(arch)
	if err != nil {
		return 2, fmt.Errorf("--arch: %w", err)
	}
	cfg.Arch = a
	cfg.ExtraDisks, cfg.HostFwd = extra, fwd
	cfg.AllowReboot = !*noReboot
	cfg.Interactive = true
	// The emulator, firmware and variable store template of the architecture, as Args sees them.
	cfg = cfg.Defaults()

	if printOnly {
		fmt.Fprintln(stdout, cfg.CommandLine())
		return 0, nil
	}
	if err := qemu.AvailableArch(cfg.Arch); err != nil {
		return 2, err
	}
	if cfg.OVMFVars != "" {
		// A persistent store starts as the template, like a new machine.
		if _, err := os.Stat(cfg.OVMFVars); errors.Is(err, os.ErrNotExist) {
			if err := copyFile(cfg.OVMFVars, cfg.OVMFVarsTemplate); err != nil {
				return 2, err
			}
		}
	} else {
		// A private copy, so the run can write variables without touching
		// the template, and the next run starts from a clean NVRAM.
		dir, err := os.MkdirTemp("", "bootvm-")
		if err != nil {
			return 2, fmt.Errorf("temp dir for the UEFI variable store: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.OVMFVars = filepath.Join(dir, "OVMF_VARS.fd")
		if err := copyFile(cfg.OVMFVars, cfg.OVMFVarsTemplate); err != nil {
			return 2, err
		}
	}

	if cfg.TPMState != "" {
		dir, err := os.MkdirTemp("", "bootvm-tpm-")
		if err != nil {
			return 2, err
		}
		defer os.RemoveAll(dir)
		cfg.TPMSocket = qemu.TPMSocketPath(dir)
		tpm, err := qemu.StartSWTPM("swtpm", cfg.TPMState, cfg.TPMSocket, "")
		if err != nil {
			return 2, err
		}
		defer func() { _ = tpm.Process.Kill(); _ = tpm.Wait() }()
	}
	if err := cfg.Validate(); err != nil {
		return 2, err
	}
	cmd := exec.Command(cfg.QEMU, cfg.Args()...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// QEMU owns the terminal in raw mode; if a signal still reaches us
	// (kill from another shell), let QEMU decide and keep living to clean
	// up. Notify, unlike Ignore, does not leak into the child.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), nil
		}
		return 2, fmt.Errorf("run %s: %w", cfg.QEMU, err)
	}
	return 0, nil
}

func copyFile(dst, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copy UEFI variable store: %w", err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		return fmt.Errorf("copy UEFI variable store: %w", err)
	}
	return nil
}
