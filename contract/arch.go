package contract

import (
	"fmt"
	"slices"
	"strings"
)

// Arch is a CPU architecture Ballast builds for, spelled as Go and Debian spell it. Every
// architecture-dependent name (Debian package architecture, Go's GOARCH, the UEFI file-name suffix,
// the Discoverable Partitions Specification type GUIDs, QEMU's system emulator) comes from ArchInfo,
// so that adding an architecture is one table entry.
type Arch string

const (
	AMD64 Arch = "amd64"
	ARM64 Arch = "arm64"
)

// DefaultArch is what a variant without `arch` builds for.
const DefaultArch = AMD64

// ArchInfo is what differs between architectures, by the name each tool uses for it.
type ArchInfo struct {
	Arch    Arch
	GOARCH  string // Go's GOARCH
	Debian  string // Debian's package architecture (Packages index, .deb file names)
	Machine string // uname -m, ELF/kernel naming ("x86_64", "aarch64"); also EC2's and OVF's spelling differs, see below
	// EFISuffix is the UEFI specification's short name: BOOT<SUFFIX>.EFI, systemd's
	// systemd-boot<suffix>.efi and linux<suffix>.efi.stub.
	EFISuffix string
	// PEMachine is the COFF machine type of the architecture's EFI binaries.
	PEMachine uint16
	// ELFMachine is the ELF e_machine of its Linux programs.
	ELFMachine uint16
	// RootType and RootVerityType are the Discoverable Partitions Specification partition type
	// GUIDs of the root file system and its verity hash tree.
	RootType, RootVerityType string
	// EC2 is the architecture as RegisterImage spells it.
	EC2 string
	// QEMU is the system emulator that runs it.
	QEMU string
}

var archs = []ArchInfo{
	{
		Arch: AMD64, GOARCH: "amd64", Debian: "amd64", Machine: "x86_64",
		EFISuffix: "x64", PEMachine: 0x8664, ELFMachine: 62, // EM_X86_64
		RootType:       "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
		RootVerityType: "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5",
		EC2:            "x86_64", QEMU: "qemu-system-x86_64",
	},
	{
		Arch: ARM64, GOARCH: "arm64", Debian: "arm64", Machine: "aarch64",
		EFISuffix: "aa64", PEMachine: 0xaa64, ELFMachine: 183, // EM_AARCH64
		RootType:       "b921b045-1df0-41c3-af44-4c6f280d3fae",
		RootVerityType: "df3300ce-d69f-4c92-978c-9bfb0f38d820",
		EC2:            "arm64", QEMU: "qemu-system-aarch64",
	},
}

// Archs lists the architectures Ballast builds for.
func Archs() []Arch {
	out := make([]Arch, len(archs))
	for i, a := range archs {
		out[i] = a.Arch
	}
	return out
}

// ParseArch accepts an architecture by its Go/Debian name, or by its machine name ("x86_64",
// "aarch64"), which is what `uname -m` and image manifests of other tools say.
func ParseArch(s string) (Arch, error) {
	for _, a := range archs {
		if s == string(a.Arch) || s == a.Machine {
			return a.Arch, nil
		}
	}
	names := make([]string, len(archs))
	for i, a := range archs {
		names[i] = string(a.Arch)
	}
	return "", fmt.Errorf("architecture %q: want one of %s", s, strings.Join(names, ", "))
}

// Info returns the architecture's names. It panics for an Arch that did not come from ParseArch
// or the constants: that is a programming error, never input.
func (a Arch) Info() ArchInfo {
	i := slices.IndexFunc(archs, func(x ArchInfo) bool { return x.Arch == a })
	if i < 0 {
		panic(fmt.Sprintf("contract: unknown architecture %q", string(a)))
	}
	return archs[i]
}

// Or returns a, or DefaultArch when a is empty (manifests written before arm64 existed).
func (a Arch) Or() Arch {
	if a == "" {
		return DefaultArch
	}
	return a
}

// ESPLoaderPath is where the ESP carries systemd-boot as the removable-media loader for the
// architecture: EFI/BOOT/BOOTX64.EFI, EFI/BOOT/BOOTAA64.EFI.
func (a Arch) ESPLoaderPath() string {
	return "EFI/BOOT/BOOT" + strings.ToUpper(a.Info().EFISuffix) + ".EFI"
}

// SystemdBootFile and SystemdStubFile are systemd-boot and the UKI stub in Debian's
// systemd-boot-efi package of the architecture.
func (a Arch) SystemdBootFile() string {
	return "usr/lib/systemd/boot/efi/systemd-boot" + a.Info().EFISuffix + ".efi"
}

func (a Arch) SystemdStubFile() string {
	return "usr/lib/systemd/boot/efi/linux" + a.Info().EFISuffix + ".efi.stub"
}
