package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/builder/variant"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/fat"
)

// TestESPRoom: the ESP must take a second UKI (an update's, up to espGrowth larger) beside its
// files; a variant whose ESP cannot is refused at build time, naming the key and the size it needs.
func TestESPRoom(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name      string
		esp, uki  int64
		files     int64
		wantError string
	}{
		{"amd64 cloud UKI in 64 MiB", 64 * mib, 16 * mib, 16*mib + 100<<10, ""},
		{"arm64 UKI in 64 MiB", 64 * mib, 28 * mib, 28 * mib, "partitions.esp: 64 MiB holds 28 MiB of files and a 28 MiB UKI, but an update stages a second UKI beside the first: it needs at least 65 MiB on arm64"},
		{"arm64 UKI in 96 MiB", 96 * mib, 28 * mib, 28 * mib, ""},
		{"keys and loader count", 39 * mib, 16 * mib, 18 * mib, "it needs at least 40 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			uki := filepath.Join(dir, "uki.efi")
			if err := os.WriteFile(uki, make([]byte, tc.uki), 0o644); err != nil {
				t.Fatal(err)
			}
			b := &builder{arch: contract.ARM64, ukis: map[contract.Slot]string{contract.SlotA: uki, contract.SlotB: uki},
				v: &variant.Variant{Path: "v.toml", Partitions: variant.Partitions{ESP: variant.Size(tc.esp)}}}
			err := b.espRoom([]fat.File{{Path: "EFI/Linux/a.efi", Data: make([]byte, tc.files)}})
			if tc.wantError == "" && err != nil || tc.wantError != "" && (err == nil || !strings.Contains(err.Error(), tc.wantError)) {
				t.Errorf("espRoom: %v, want %q", err, tc.wantError)
			}
		})
	}
}
