// Package osinfo answers GET /os: the running image's identity (contract.Identity, the same one
// the system init prints on the ready line), the boot entry the loader booted, the architecture
// the kernel release and whether the firmware enforces Secure Boot.
package osinfo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/efivar"
)

// Sources says where to read from. The zero value reads the running host.
type Sources struct {
	OSRelease string                 // default contract.OSReleasePath
	Cmdline   string                 // default /proc/cmdline
	Kernel    func() (string, error) // kernel release; default uname(2)
	// Image is image.json, for the architecture; default contract.ImageInfoPath. A missing file
	// leaves the architecture to Machine.
	Image string
	// EFIVars is where efivarfs is mounted, for the boot entry and Secure Boot; default
	// contract.EFIVarsMount. Without it (no EFI, or not mounted) the entry is unknown and Secure
	// Boot unsupported.
	EFIVars string
	// Machine is the kernel's architecture; default uname(2)'s machine (x86_64, aarch64).
	Machine func() (string, error)
}

func (src *Sources) defaults() {
	if src.OSRelease == "" {
		src.OSRelease = contract.OSReleasePath
	}
	if src.Cmdline == "" {
		src.Cmdline = "/proc/cmdline"
	}
	if src.Kernel == nil {
		src.Kernel = func() (string, error) { return uname(func(u *syscall.Utsname) *[65]int8 { return &u.Release }) }
	}
	if src.Image == "" {
		src.Image = contract.ImageInfoPath
	}
	if src.EFIVars == "" {
		src.EFIVars = contract.EFIVarsMount
	}
	if src.Machine == nil {
		src.Machine = func() (string, error) { return uname(func(u *syscall.Utsname) *[65]int8 { return &u.Machine }) }
	}
}

// Read returns the OS description.
func Read(src Sources) (apitypes.OS, error) {
	src.defaults()
	b, err := os.ReadFile(src.OSRelease)
	if err != nil {
		return apitypes.OS{}, fmt.Errorf("os-release: %w", err)
	}
	rel, err := contract.ParseOSRelease(b)
	if err != nil {
		return apitypes.OS{}, fmt.Errorf("%s: %w", src.OSRelease, err)
	}
	b, err = os.ReadFile(src.Cmdline)
	if err != nil {
		return apitypes.OS{}, fmt.Errorf("kernel command line: %w", err)
	}
	id := contract.IdentityFrom(rel, contract.ParseCmdline(string(b)))
	kernel, err := src.Kernel()
	if err != nil {
		return apitypes.OS{}, fmt.Errorf("kernel release: %w", err)
	}
	entry, err := BootEntry(src.EFIVars)
	if err != nil {
		return apitypes.OS{}, err
	}
	arch, err := arch(src)
	if err != nil {
		return apitypes.OS{}, err
	}
	sb, err := efivar.SecureBoot(efivar.Vars{Dir: src.EFIVars})
	if err != nil {
		return apitypes.OS{}, fmt.Errorf("secure boot: %w", err)
	}
	return apitypes.OS{
		Version:  id.Version,
		Variant:  id.Variant,
		BuildID:  id.BuildID,
		Slot:     id.Slot,
		Entry:    entry,
		RootHash: id.RootHash,
		Kernel:   kernel,
		Arch:     arch,
		// The state's words are the API's: one vocabulary from the firmware to the client.
		SecureBoot: string(sb),
	}, nil
}

// arch is the image's architecture as the builder wrote it, else the kernel's.
func arch(src Sources) (string, error) {
	b, err := os.ReadFile(src.Image)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("image description: %w", err)
	default:
		var img contract.Image
		if err := json.Unmarshal(b, &img); err != nil {
			return "", fmt.Errorf("image description %s: %w", src.Image, err)
		}
		if img.Arch != "" {
			return img.Arch, nil
		}
	}
	m, err := src.Machine()
	if err != nil {
		return "", fmt.Errorf("machine: %w", err)
	}
	return m, nil
}

func uname(field func(*syscall.Utsname) *[65]int8) (string, error) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "", err
	}
	f := field(&u)
	b := make([]byte, 0, len(f))
	for _, c := range f {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b), nil
}
