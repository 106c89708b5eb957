package iso

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/images/gpt"
	"github.com/ballast-os/ballast/tests/vmtest"
)

func TestMain(m *testing.M) { vmtest.Main(m) }

// TestVM attaches a seed volume (vda) and a hybrid installer volume (vdb) to a QEMU guest running
// the image's kernel, which has the isofs and vfat modules the build host's kernel lacks.
func TestVM(t *testing.T) {
	seed := writeFile(t, mountOptions(t, false), testFiles())
	hybrid := writeFile(t, mountOptions(t, true), testFiles())
	vmtest.Run(t, vmtest.Options{
		Modules: []string{"virtio_pci", "virtio_blk", "isofs", "vfat", "nls_cp437", "nls_ascii", "nls_iso8859-1", "nls_utf8"},
		Disks:   []string{seed, hybrid},
		Memory:  768,
	})
}

// TestGuestMount mounts both volumes with isofs, as the host's NoCloud reader and the installer
// do, and the hybrid one's GPT partition with vfat, as firmware booting it as a disk would see it.
func TestGuestMount(t *testing.T) {
	vmtest.GuestOnly(t)
	for _, dev := range []string{"/dev/vda", "/dev/vdb"} {
		t.Run(dev, func(t *testing.T) {
			dir := t.TempDir()
			if err := unix.Mount(dev, dir, "iso9660", unix.MS_RDONLY, ""); err != nil {
				t.Fatalf("mount %s as iso9660: %v", dev, err)
			}
			defer unix.Unmount(dir, 0)
			checkMounted(t, dir)
		})
	}

	// The kernel's own GPT parser found the ESP where the table says.
	img, err := os.Open("/dev/vdb")
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	table, err := gpt.ReadPrimary(img, sectorSize)
	if err != nil {
		t.Fatal(err)
	}
	p := table.Partitions()[0]
	for file, want := range map[string]uint64{"start": p.FirstLBA, "size": p.Sectors()} {
		b, err := os.ReadFile("/sys/class/block/vdb1/" + file)
		if err != nil {
			t.Fatalf("the kernel made no partition of the hybrid volume: %v", err)
		}
		if got, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); got != want {
			t.Errorf("vdb1 %s = %d sectors, want %d", file, got, want)
		}
	}
	dir := t.TempDir()
	if err := unix.Mount("/dev/vdb1", dir, "vfat", unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount the ESP /dev/vdb1 as vfat: %v", err)
	}
	defer unix.Unmount(dir, 0)
	got, err := os.ReadFile(filepath.Join(dir, "EFI/BOOT/BOOTX64.EFI"))
	if err != nil || !bytes.Equal(got, espLoader()) {
		t.Errorf("EFI/BOOT/BOOTX64.EFI on the ESP: %d bytes, %v", len(got), err)
	}
}
