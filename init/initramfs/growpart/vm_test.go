package growpart

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
	"github.com/ballast-os/ballast/tests/vmtest"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { vmtest.Main(m) }

// vmDataStart is where makeDisk puts the data partition: after 1 MiB + esp 8 MiB + root 16 MiB.
const vmDataStart = 25 * mib

var vmBlockSizes = []int{4096, 1024} // one disk each: /dev/vda, /dev/vdb

// TestVM runs the whole first-boot flow in a QEMU guest, where EXT4_IOC_RESIZE_FS is allowed
// (build containers usually lack CAP_SYS_RESOURCE): 64 MiB images with an 8 MiB ext4 data
// partition, grown to 512 MiB disks before boot.
func TestVM(t *testing.T) {
	needTools(t, "sgdisk", "mkfs.ext4", "e2fsck", "dumpe2fs")
	var disks []string
	for _, bs := range vmBlockSizes {
		img := filepath.Join(t.TempDir(), fmt.Sprintf("disk-%d.img", bs))
		makeDisk(t, img, 64*mib, "+8M")
		// mke2fs writes straight into the image at the partition's offset: no loop device, no root.
		testutil.Run(t, "mkfs.ext4", "-q", "-F", "-b", strconv.Itoa(bs), "-E", fmt.Sprintf("offset=%d", vmDataStart), img, "8M")
		if err := os.Truncate(img, 512*mib); err != nil {
			t.Fatal(err)
		}
		disks = append(disks, img)
	}
	vmtest.Run(t, vmtest.Options{Modules: []string{"virtio_pci", "virtio_blk"}, Disks: disks})

	wantPart := int64((511 - 25) * mib)
	for i, img := range disks {
		sgdiskVerify(t, img)
		if got := sgdiskEnd(t, img, 3); got != 511*2048-1 {
			t.Errorf("%s: data partition ends at LBA %d, want %d", img, got, 511*2048-1)
		}
		// e2fsprogs open "file?offset=N" as the filesystem at that offset.
		fs := fmt.Sprintf("%s?offset=%d", img, vmDataStart)
		testutil.Run(t, "e2fsck", "-fn", fs)
		blocks := int64(dumpe2fsBlocks(t, fs))
		if size := blocks * int64(vmBlockSizes[i]); size > wantPart || size < wantPart-8*mib {
			t.Errorf("%s: filesystem has %d bytes, partition %d", img, size, wantPart)
		}
	}
}

func TestGuestFirstBoot(t *testing.T) {
	vmtest.GuestOnly(t)
	for i, bs := range vmBlockSizes {
		disk := fmt.Sprintf("/dev/vd%c", 'a'+i)
		t.Run(disk, func(t *testing.T) {
			// The root partition of the same disk is open, as it is under dm-verity at boot.
			root, err := os.Open(disk + "2")
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()

			res, err := Grow(disk, dataUUID)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Changed || !res.BackupMoved || res.OldSize != 8*mib || res.NewSize != (511-25)*mib {
				t.Fatalf("Grow = %+v", res)
			}
			if got := sysfsSize(t, disk+"3"); got != res.NewSize {
				t.Fatalf("kernel sees %d bytes for %s3 after BLKPG, want %d", got, disk, res.NewSize)
			}

			mnt := t.TempDir()
			if err := unix.Mount(disk+"3", mnt, "ext4", 0, ""); err != nil {
				t.Fatal(err)
			}
			defer unix.Unmount(mnt, 0)
			var before, after unix.Statfs_t
			unix.Statfs(mnt, &before)
			fsr, err := resizeExt4(mnt, res.NewSize)
			if err != nil {
				t.Fatal(err)
			}
			unix.Statfs(mnt, &after)
			if fsr.blockSize != int64(bs) || fsr.oldBlocks != uint64(8*mib/bs) || fsr.newBlocks <= fsr.oldBlocks || after.Blocks <= before.Blocks {
				t.Fatalf("resize: %+v, statfs blocks %d → %d", fsr, before.Blocks, after.Blocks)
			}
			t.Logf("%s3: ext4 %d → %d blocks of %d bytes (partition %d bytes)", disk, fsr.oldBlocks, fsr.newBlocks, bs, res.NewSize)

			// Second boot: nothing to do, nothing written.
			res2, err := Grow(disk, dataUUID)
			if err != nil || res2.Changed || res2.NewSize != res.NewSize {
				t.Errorf("second Grow = %+v, %v", res2, err)
			}
			fsr2, err := resizeExt4(mnt, res2.NewSize)
			if err != nil || fsr2.oldBlocks != fsr.newBlocks || fsr2.newBlocks != fsr.newBlocks {
				t.Errorf("second resize = %+v, %v", fsr2, err)
			}
			if err := unix.Unmount(mnt, 0); err != nil {
				t.Fatal(err)
			}
		})
	}
}
