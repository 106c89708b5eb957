package efivar

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Attributes the firmware gives SecureBoot and SetupMode: boot service and runtime access,
// non-volatile not set.
const globalAttrs = 0x6

func TestSecureBoot(t *testing.T) {
	tests := []struct {
		name string
		vars map[string][]byte // data after the attributes; nil writes no file
		raw  map[string][]byte // whole files
		want SecureBootState
		err  string
	}{
		{name: "enabled", vars: map[string][]byte{SecureBootVar: {1}, SetupModeVar: {0}}, want: SecureBootEnabled},
		{name: "disabled", vars: map[string][]byte{SecureBootVar: {0}, SetupModeVar: {0}}, want: SecureBootDisabled},
		{name: "setup mode", vars: map[string][]byte{SecureBootVar: {0}, SetupModeVar: {1}}, want: SecureBootSetupMode},
		// Firmware that says both is in setup mode: nothing is verified without a platform key.
		{name: "setup mode wins", vars: map[string][]byte{SecureBootVar: {1}, SetupModeVar: {1}}, want: SecureBootSetupMode},
		{name: "enabled without SetupMode", vars: map[string][]byte{SecureBootVar: {1}}, want: SecureBootEnabled},
		{name: "no variables", want: SecureBootUnsupported},
		{name: "SetupMode only, user mode", vars: map[string][]byte{SetupModeVar: {0}}, want: SecureBootUnsupported},
		{name: "two bytes", vars: map[string][]byte{SecureBootVar: {1, 0}}, err: "efi variable SecureBoot: [1 0], want one byte"},
		{name: "not a boolean", vars: map[string][]byte{SecureBootVar: {2}, SetupModeVar: {0}}, err: "SecureBoot: [2]"},
		{name: "empty", vars: map[string][]byte{SetupModeVar: {}}, err: "SetupMode: [], want one byte"},
		{name: "no attributes", raw: map[string][]byte{SecureBootVar: {6, 0}}, err: "shorter than its attributes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, d := range tt.vars {
				b := append(binary.LittleEndian.AppendUint32(nil, globalAttrs), d...)
				if err := os.WriteFile(filepath.Join(dir, n+"-"+GlobalGUID), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for n, b := range tt.raw {
				if err := os.WriteFile(filepath.Join(dir, n+"-"+GlobalGUID), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := SecureBoot(Vars{Dir: dir})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("SecureBoot = %q, %v; want error %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("SecureBoot = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	// No efivarfs at all: a BIOS boot, or a container without /sys/firmware.
	if got, err := SecureBoot(Vars{Dir: filepath.Join(t.TempDir(), "none")}); err != nil || got != SecureBootUnsupported {
		t.Fatalf("SecureBoot without efivarfs = %q, %v", got, err)
	}
}
