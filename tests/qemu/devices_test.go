package qemu

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/testutil"
)

// systemdBoot is a real, signed-or-not EFI program OVMF can start from any medium.
const systemdBoot = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"

// bootMedia makes a FAT volume (no partition table, as on a USB stick formatted whole) with
// \EFI\BOOT\BOOTX64.EFI, the removable-media boot path, and an ISO9660 CD image that boots the
// same volume through El Torito.
func bootMedia(t *testing.T) (fat, iso string) {
	t.Helper()
	testutil.Need(t, fileExists(systemdBoot), "%s (Debian package systemd-boot-efi)", systemdBoot)
	mkfs := testutil.Tool(t, "mkfs.fat", "dosfstools")
	mmd := testutil.Tool(t, "mmd", "mtools")
	mcopy := testutil.Tool(t, "mcopy", "mtools")
	xorriso := testutil.Tool(t, "xorriso", "xorriso")
	dir := t.TempDir()
	fat = filepath.Join(dir, "esp.img")
	testutil.Run(t, mkfs, "-C", "-n", "BOOTTEST", fat, "8192")
	testutil.Run(t, mmd, "-i", fat, "::EFI", "::EFI/BOOT")
	testutil.Run(t, mcopy, "-i", fat, systemdBoot, "::EFI/BOOT/BOOTX64.EFI")
	root := filepath.Join(dir, "cd")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(fat, filepath.Join(root, "esp.img")); err != nil {
		t.Fatal(err)
	}
	iso = filepath.Join(dir, "boot.iso")
	testutil.Run(t, xorriso, "-as", "mkisofs", "-quiet", "-R", "-V", "BOOTTEST", "-e", "esp.img", "-no-emul-boot", "-o", iso, root)
	return fat, iso
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestBootEachBus boots a removable-media loader from a disk on each bus and from a CD-ROM, and
// checks that OVMF started it from the expected device: so the buses a test picks are ones the
// firmware can boot from, not only ones QEMU accepts. PVSCSI is not among them: Debian's OVMF has
// no driver for it (a PVSCSI disk is not even a boot option), so a test boots a PVSCSI machine
// through Kernel (TestBootKernelPVSCSI).
func TestBootEachBus(t *testing.T) {
	bootPrereqs(t)
	fat, iso := bootMedia(t)
	blank := emptyDisk(t)
	tests := []struct {
		name string
		cfg  Config
		// from matches OVMF's "starting Boot#### ... from <device path>" line.
		from string
	}{
		{"virtio", Config{Disk: fat}, `from PciRoot\(0x0\)/Pci\(0x[0-9A-F]+,0x0\)$`},
		{"ahci", Config{Disk: fat, DiskBus: BusAHCI}, `from PciRoot\(0x0\)/Pci\(0x1F,0x2\)/Sata\(0x0,0xFFFF,0x0\)$`},
		// The boot disk is the second namespace of the first controller: Linux's nvme0n2.
		{"nvme namespace 2", Config{Disk: fat, DiskBus: BusNVMe, DiskNVMe: NVMeSlot{NSID: 2},
			Drives: []Drive{{Path: blank, Bus: BusNVMe}}}, `/NVMe\(0x2,`},
		{"nvme second controller", Config{Disk: fat, DiskBus: BusNVMe, DiskNVMe: NVMeSlot{Controller: 1},
			Drives: []Drive{{Path: blank, Bus: BusNVMe}}}, `/NVMe\(0x1,`},
		{"usb", Config{Disk: fat, DiskBus: BusUSB}, `/USB\(0x0,0x0\)$`},
		{"ahci cd-rom", Config{Disk: blank, Drives: []Drive{{Path: iso, Bus: BusAHCI, CDROM: true, Boot: true}}}, `/Sata\(0x0,0xFFFF,0x0\)$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.Snapshot, tt.cfg.NoNetwork, tt.cfg.Timeout = true, true, 2*time.Minute
			for i := range tt.cfg.Drives {
				tt.cfg.Drives[i].ReadOnly = true
				if tt.cfg.Drives[i].Bus == BusAHCI && !tt.cfg.Drives[i].CDROM {
					tt.cfg.Drives[i].ReadOnly = false
				}
			}
			begin := time.Now()
			vm := startVM(t, tt.cfg)
			m, err := vm.Expect(regexp.MustCompile(`^BdsDxe: starting Boot[0-9A-F]{4} "(.*)" (from .*)$`), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(tt.from).MatchString(m[2]) {
				t.Errorf("OVMF started %q %s; want it %s\n%s", m[1], m[2], tt.from, vm.CommandLine())
			}
			t.Logf("%.1fs: started %q %s", time.Since(begin).Seconds(), m[1], m[2])
		})
	}
}

// TestBootKernelPVSCSI boots a loader as the kernel, with nothing bootable on the disks (a blank
// PVSCSI disk, a CD-ROM beside it): systemd-boot's menu can only come from -kernel.
func TestBootKernelPVSCSI(t *testing.T) {
	bootPrereqs(t)
	_, iso := bootMedia(t)
	vm := startVM(t, Config{Disk: emptyDisk(t), DiskBus: BusPVSCSI, Snapshot: true, NoNetwork: true,
		Drives: []Drive{{Path: iso, Bus: BusPVSCSI, CDROM: true}}, Kernel: systemdBoot})
	if _, err := vm.Expect(regexp.MustCompile(`Reboot Into Firmware Interface`), 0); err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`BdsDxe: starting .*`).FindString(vm.Console()); m != "" {
		t.Errorf("the firmware started a boot option before the kernel: %s", m)
	}
}

// TestSMBIOSReachesFirmware checks that the SMBIOS strings reach the firmware's tables: once the
// loader returns, OVMF's front page shows the type 1 product and version (by default "Standard PC
// (Q35 + ICH9, 2009)" and the machine type).
func TestSMBIOSReachesFirmware(t *testing.T) {
	bootPrereqs(t)
	fat, _ := bootMedia(t)
	// systemd-boot without entries reboots into the firmware's setup, which shows the front page.
	vm := startVM(t, Config{Disk: fat, Snapshot: true, NoNetwork: true, AllowReboot: true,
		SMBIOS: SMBIOSSystem{Manufacturer: "Amazon EC2", Product: "m5.large"}})
	if _, err := vm.Expect(regexp.MustCompile(`m5\.large`), 2*time.Minute); err != nil {
		t.Fatal(err)
	}
}
