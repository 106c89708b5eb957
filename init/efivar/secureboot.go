package efivar

import (
	"errors"
	"fmt"
	"io/fs"
)

// GlobalGUID is the vendor of the UEFI specification's global variables (EFI_GLOBAL_VARIABLE),
// SecureBoot and SetupMode among them.
const GlobalGUID = "8be4df61-93ca-11d2-aa0d-00e098032b8c"

// The global variables that say whether the firmware enforces Secure Boot.
const (
	// SecureBootVar is 1 while the firmware verifies what it boots, 0 while it does not.
	SecureBootVar = "SecureBoot"
	// SetupModeVar is 1 while no platform key is enrolled: anyone may enroll keys, and nothing is
	// verified.
	SetupModeVar = "SetupMode"
)

// SecureBootState is what the firmware says about Secure Boot.
type SecureBootState string

const (
	SecureBootEnabled  SecureBootState = "enabled"
	SecureBootDisabled SecureBootState = "disabled"
	// SecureBootSetupMode is firmware without a platform key: it verifies nothing and takes the
	// first keys offered (systemd-boot enrolls the owner's from the ESP).
	SecureBootSetupMode SecureBootState = "setup-mode"
	// SecureBootUnsupported is firmware without the variables (BIOS, no Secure Boot support), or
	// a system where efivarfs is not mounted.
	SecureBootUnsupported SecureBootState = "unsupported"
)

// SecureBoot reads SecureBoot and SetupMode. Setup mode wins over SecureBoot, which firmware
// keeps at 0 then anyway. A variable that is not one byte of 0 or 1 is an error naming it: the
// answer must not guess in the owner's favour.
func SecureBoot(v Vars) (SecureBootState, error) {
	setup, setupOK, err := flag(v, SetupModeVar)
	if err != nil {
		return "", err
	}
	if setupOK && setup {
		return SecureBootSetupMode, nil
	}
	on, ok, err := flag(v, SecureBootVar)
	switch {
	case err != nil:
		return "", err
	case !ok:
		return SecureBootUnsupported, nil
	case on:
		return SecureBootEnabled, nil
	}
	return SecureBootDisabled, nil
}

// flag reads a one-byte boolean global variable; ok is false when it is not set.
func flag(v Vars, name string) (value, ok bool, err error) {
	_, data, err := v.Read(name, GlobalGUID)
	if errors.Is(err, fs.ErrNotExist) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	if len(data) != 1 || data[0] > 1 {
		return false, false, fmt.Errorf("efi variable %s: %v, want one byte of 0 or 1", name, data)
	}
	return data[0] == 1, true, nil
}
