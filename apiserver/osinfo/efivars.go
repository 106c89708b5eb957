package osinfo

import (
	"errors"
	"io/fs"

	"github.com/ballast-os/ballast/init/efivar"
)

// BootEntry returns the file name of the boot entry the loader booted, from the loader's
// variables in the efivarfs at dir (efivar.Loader.BootedEntry). Without them (no EFI, no
// systemd-boot, efivarfs not mounted) it is "".
func BootEntry(dir string) (string, error) {
	name, err := efivar.Loader{Vars: efivar.Vars{Dir: dir}}.BootedEntry()
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return name, err
}
