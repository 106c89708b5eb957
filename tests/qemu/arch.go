package qemu

import (
	"fmt"
	"runtime"

	"github.com/ballast-os/ballast/contract"
)

// Firmware for arm64: Debian's qemu-efi-aarch64 (AAVMF, EDK II's ArmVirtQemu). Both images are
// padded to the 64 MiB of the virt machine's two flash banks, as QEMU requires of pflash there.
const (
	DefaultAAVMFCode         = "/usr/share/AAVMF/AAVMF_CODE.fd"
	DefaultAAVMFVarsTemplate = "/usr/share/AAVMF/AAVMF_VARS.fd"
)

// machine is what differs between the architectures' virtual machines. The emulator's name is
// contract.ArchInfo.QEMU.
type machine struct {
	// qemuPackage and firmwarePackage are the Debian packages of the emulator and firmware, for
	// Available's messages.
	qemuPackage, firmwarePackage string
	code, varsTemplate           string
	// board is -machine. x86 uses q35 for PCIe and its built-in AHCI; arm64 uses virt, whose
	// GICv3 takes more than 8 CPUs and is what current arm64 servers have.
	board string
	// tcgCPU is -cpu under TCG.
	tcgCPU string
	// tpmDevice is the TPM's front end for swtpm: a TIS on the ISA bus of the PC, a TIS on the
	// system bus (MMIO, in the device tree and ACPI tables) of virt.
	tpmDevice string
	// secureBoot and ahci tell whether the harness offers SecureBoot (a Secure Boot firmware with
	// SMM) and BusAHCI (the board's own AHCI controller).
	secureBoot, ahci bool
}

var machines = map[contract.Arch]machine{
	contract.AMD64: {
		qemuPackage: "qemu-system-x86", firmwarePackage: "ovmf",
		code: DefaultOVMFCode, varsTemplate: DefaultOVMFVarsTemplate,
		board: "q35",
		// Every feature TCG emulates, notably RDRAND so the guest CRNG is ready at once.
		tcgCPU:     "max",
		tpmDevice:  "tpm-tis",
		secureBoot: true, ahci: true,
	},
	contract.ARM64: {
		qemuPackage: "qemu-system-arm", firmwarePackage: "qemu-efi-aarch64",
		code: DefaultAAVMFCode, varsTemplate: DefaultAAVMFVarsTemplate,
		board: "virt,gic-version=3",
		// "max" for RNDR (the CRNG ready at once, as RDRAND on x86), with QEMU's own pointer
		// authentication algorithm instead of QARMA: emulating QARMA makes a kernel boot about
		// four times slower under TCG (20 s against 5 s to the root mount here), and the
		// guest cannot tell the difference.
		tcgCPU:    "max,pauth-impdef=on",
		tpmDevice: "tpm-tis-device",
	},
}

// machineOf returns the machine of a, which must be one of contract's architectures spelled
// canonically (withDefaults normalizes; validate reports the rest).
func machineOf(a contract.Arch) (machine, error) {
	m, ok := machines[a]
	if !ok {
		return machine{}, fmt.Errorf("qemu: config: Arch %q: want one of %v", a, contract.Archs())
	}
	return m, nil
}

// hostArch reports whether a is the architecture this program runs on, where KVM can run it.
func hostArch(a contract.Arch) bool {
	_, ok := machines[a]
	return ok && a.Info().GOARCH == runtime.GOARCH
}

// AvailableArch is Available for a VM of architecture a: its emulator and firmware.
func AvailableArch(a contract.Arch) error {
	a, err := contract.ParseArch(string(a))
	if err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	m, err := machineOf(a)
	if err != nil {
		return err
	}
	return available(a.Info().QEMU, m.qemuPackage, m.code, m.varsTemplate, m.firmwarePackage)
}
