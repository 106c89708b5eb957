// Package osinfo answers GET /os: the running image's identity (contract.Identity, the same one
// the system init prints on the ready line) and the kernel release.
package osinfo

import (
	"fmt"
	"os"
	"syscall"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/contract"
)

// Sources says where to read from. The zero value reads the running host.
type Sources struct {
	OSRelease string                 // default contract.OSReleasePath
	Cmdline   string                 // default /proc/cmdline
	Kernel    func() (string, error) // kernel release; default uname(2)
}

// Read returns the OS description.
func Read(src Sources) (apitypes.OS, error) {
	if src.OSRelease == "" {
		src.OSRelease = contract.OSReleasePath
	}
	if src.Cmdline == "" {
		src.Cmdline = "/proc/cmdline"
	}
	if src.Kernel == nil {
		src.Kernel = unameRelease
	}
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
	return apitypes.OS{
		Version:  id.Version,
		Variant:  id.Variant,
		BuildID:  id.BuildID,
		Slot:     id.Slot,
		RootHash: id.RootHash,
		Kernel:   kernel,
	}, nil
}

func unameRelease() (string, error) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "", err
	}
	b := make([]byte, 0, len(u.Release))
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b), nil
}
