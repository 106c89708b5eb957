package qemu

import (
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/disk"
	"github.com/ballast-os/ballast/images/fat"
	"github.com/ballast-os/ballast/tests/testutil"
)

// firmwareBudget bounds how long AAVMF may take to reach its boot manager under TCG. It takes
// about 8 s on this project's 2-core machines with other VMs running beside it; the bound leaves
// room for a slower or busier host while still catching a firmware that never gets there.
const firmwareBudget = 90 * time.Second

// TestBootArm64UEFIShell boots AAVMF on an empty disk: the firmware's boot manager finds nothing
// on the virtio disk and starts its built-in shell. The shell echoes what is typed on the PL011
// serial console and powers the machine off, so the console works both ways as on x86.
func TestBootArm64UEFIShell(t *testing.T) {
	bootPrereqsArch(t, contract.ARM64)
	begin := time.Now()
	vm := startVM(t, Config{Arch: contract.ARM64, Disk: emptyDisk(t), Snapshot: true, Timeout: 5 * time.Minute})
	t.Logf("started: %s", vm.CommandLine())
	steps := []struct {
		name    string
		want    string
		send    string
		timeout time.Duration
	}{
		{name: "firmware banner", want: `^UEFI firmware \(version .*\)`, timeout: firmwareBudget},
		{name: "boot manager", want: `^BdsDxe: failed to load Boot\d+ "UEFI Misc Device" from PciRoot\(0x0\)/Pci\(0x[0-9A-F]+,0x0\): Not Found$`, timeout: firmwareBudget},
		{name: "shell", want: `^UEFI Interactive Shell v(\S+)`},
		{name: "countdown", want: `Press ESC in \d+ seconds`, send: " "},
		{name: "prompt", want: `^Shell> $`, send: "echo ballast-\"arm64\"-test\r"},
		{name: "echo", want: `^ballast-arm64-test$`, send: "reset -s\r"},
	}
	for _, s := range steps {
		if _, err := vm.Expect(regexp.MustCompile(s.want), s.timeout); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		t.Logf("%6.1fs %s", time.Since(begin).Seconds(), s.name)
		if s.send != "" {
			if err := vm.Send(s.send); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := vm.WaitExit(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := vm.ShutdownReason(); got != "guest-shutdown" {
		t.Errorf("shutdown reason %q, want guest-shutdown", got)
	}
}

// arm64BootDisk writes a disk laid out for arm64 by images/disk (root and verity partitions of
// arm64's DPS types) whose ESP, written by images/fat, holds Debian's arm64 systemd-boot at the
// architecture's removable-media path and nothing else: the firmware must find the loader by that
// path in that table.
func arm64BootDisk(t *testing.T) string {
	t.Helper()
	loaderFile := "/" + contract.ARM64.SystemdBootFile()
	testutil.Need(t, fileExists(loaderFile), "%s (Debian package systemd-boot-efi:arm64)", loaderFile)
	loader, err := os.ReadFile(loaderFile)
	if err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256([]byte("arm64 root"))
	l, err := disk.Plan(contract.ARM64, disk.Sizes{ESP: 64 << 20, Root: 1 << 20, Verity: 1 << 20, Data: 1 << 20}, "arm64-harness", hash[:])
	if err != nil {
		t.Fatal(err)
	}
	esp, err := l.Partition(contract.PartESP)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "disk.raw")
	err = disk.Write(path, l, map[contract.PartitionName]disk.Content{
		contract.PartESP: func(w io.WriterAt, size int64) error {
			return fat.Write(w, size, fat.Options{Label: "ESP", VolumeID: 0xA64, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
				HiddenSectors: uint32(esp.Offset / disk.SectorSize)},
				[]fat.File{{Path: contract.ARM64.ESPLoaderPath(), Data: loader}})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBootArm64SystemdBoot boots arm64's systemd-boot from the ESP of an arm64 disk: AAVMF starts
// it from the disk, and systemd-boot, having no entries, shows a menu of its one built-in entry on
// the serial console (and, the countdown over, reboots into the firmware).
func TestBootArm64SystemdBoot(t *testing.T) {
	bootPrereqsArch(t, contract.ARM64)
	begin := time.Now()
	vm := startVM(t, Config{Arch: contract.ARM64, Disk: arm64BootDisk(t), Snapshot: true, NoNetwork: true, Timeout: 5 * time.Minute})
	m, err := vm.Expect(regexp.MustCompile(`^BdsDxe: starting Boot[0-9A-F]{4} "(.*)" from (.*)$`), firmwareBudget)
	if err != nil {
		t.Fatal(err)
	}
	// The boot option is the virtio disk as removable media; the firmware looks for the
	// loader on its ESP.
	if !regexp.MustCompile(`^PciRoot\(0x0\)/Pci\(0x[0-9A-F]+,0x0\)$`).MatchString(m[2]) {
		t.Fatalf("AAVMF started %q from %s, want the virtio disk", m[1], m[2])
	}
	t.Logf("%6.1fs firmware started the loader: %q from %s", time.Since(begin).Seconds(), m[1], m[2])
	if _, err := vm.Expect(regexp.MustCompile(`Reboot Into Firmware Interface`), 60*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("%6.1fs systemd-boot", time.Since(begin).Seconds())
	if strings.Contains(vm.Console(), "EFI Internal Shell") {
		t.Error("the firmware fell through to its shell")
	}
}
