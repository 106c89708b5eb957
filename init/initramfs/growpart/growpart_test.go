package growpart

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/tests/testutil"
)

const (
	dataUUID = "a0b1c2d3-e4f5-4a6b-8c7d-8e9fa0b1c2d3"
	rootUUID = "6e2d0e3a-2f44-4a6c-9d0b-4a1f0c6d7e81"
	mib      = 1 << 20
)

// needTools stops the test (testutil.Tool) unless the host has these tools.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	pkg := map[string]string{"sgdisk": "gdisk", "losetup": "mount", "partx": "util-linux",
		"mkfs.ext4": "e2fsprogs", "dumpe2fs": "e2fsprogs", "e2fsck": "e2fsprogs"}
	for _, tool := range tools {
		testutil.Tool(t, tool, pkg[tool])
	}
}

// makeDisk lays out esp / root / data like the builder: 1 MiB aligned, data last and small.
func makeDisk(t *testing.T, path string, size int64, dataEnd string) {
	t.Helper()
	needTools(t, "sgdisk")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "sgdisk",
		"-n1:2048:+8M", "-t1:ef00", "-c1:esp",
		"-n2:0:+16M", "-u2:"+rootUUID, "-c2:root-a",
		"-n3:0:"+dataEnd, "-u3:"+dataUUID, "-c3:data",
		path)
}

// sgdiskEnd asks sgdisk, an independent reader, where partition n ends.
func sgdiskEnd(t *testing.T, img string, n int) uint64 {
	t.Helper()
	out := testutil.Run(t, "sgdisk", "-i", strconv.Itoa(n), img)
	m := regexp.MustCompile(`Last sector: (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("sgdisk -i %d: no last sector in\n%s", n, out)
	}
	v, _ := strconv.ParseUint(m[1], 10, 64)
	return v
}

func sgdiskVerify(t *testing.T, img string) {
	t.Helper()
	if out := testutil.Run(t, "sgdisk", "-v", img); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v %s:\n%s", img, out)
	}
}

func growFile(t *testing.T, img, uuid string) (Result, error) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return GrowGPT(f, uuid)
}

func TestGrowGPT(t *testing.T) {
	const dataStart = 2048 + 24*2048 // LBA after esp and root
	tests := []struct {
		name        string
		size        int64  // image size when sgdisk lays it out
		dataEnd     string // sgdisk end spec for the data partition
		grownSize   int64  // image size when GrowGPT runs
		uuid        string
		wantEnd     uint64 // data partition's last LBA afterwards
		wantMoved   bool
		wantGrown   bool
		wantErr     string
		damage      func(t *testing.T, img string)
		wantMBRSize uint32
	}{
		{
			name: "disk grown to 128 MiB", size: 64 * mib, dataEnd: "+8M", grownSize: 128 * mib, uuid: dataUUID,
			wantEnd: 127*2048 - 1, wantMoved: true, wantGrown: true, wantMBRSize: 128*2048 - 1,
		},
		{
			name: "disk not grown, data partition small", size: 64 * mib, dataEnd: "+8M", grownSize: 64 * mib, uuid: dataUUID,
			wantEnd: 63*2048 - 1, wantGrown: true, wantMBRSize: 64*2048 - 1,
		},
		{
			name: "partition already fills the disk", size: 64 * mib, dataEnd: "129023", grownSize: 64 * mib, uuid: dataUUID,
			wantEnd: 63*2048 - 1, wantMBRSize: 64*2048 - 1,
		},
		{
			// 16 KiB more: the backup must move, but the partition's 1 MiB-aligned end stays put.
			name: "growth smaller than the alignment", size: 64 * mib, dataEnd: "129023", grownSize: 64*mib + 16<<10, uuid: dataUUID,
			wantEnd: 63*2048 - 1, wantMoved: true, wantMBRSize: 64*2048 + 32 - 1,
		},
		{
			name: "upper-case PARTUUID", size: 64 * mib, dataEnd: "+8M", grownSize: 96 * mib, uuid: strings.ToUpper(dataUUID),
			wantEnd: 95*2048 - 1, wantMoved: true, wantGrown: true, wantMBRSize: 96*2048 - 1,
		},
		{
			name: "data partition is not the last", size: 64 * mib, dataEnd: "+8M", grownSize: 128 * mib, uuid: rootUUID,
			wantErr: "data partition 2 (PARTUUID=" + rootUUID + ") is not the last: partition 3 ends at LBA",
		},
		{
			name: "unknown PARTUUID", size: 64 * mib, dataEnd: "+8M", grownSize: 128 * mib, uuid: "11111111-2222-4333-8444-555555555555",
			wantErr: "no partition with PARTUUID=11111111-2222-4333-8444-555555555555",
		},
		{
			name: "malformed PARTUUID", size: 64 * mib, dataEnd: "+8M", grownSize: 128 * mib, uuid: "data",
			wantErr: `data partition: invalid GUID: UUID "data" is not in 8-4-4-4-12 form`,
		},
		{
			name: "disk smaller than the image", size: 64 * mib, dataEnd: "+8M", grownSize: 60 * mib, uuid: dataUUID,
			wantErr: "disk has 122880 sectors but its GPT expects the backup header at LBA 131071",
		},
		{
			name: "corrupted primary header CRC", size: 64 * mib, dataEnd: "+8M", grownSize: 128 * mib, uuid: dataUUID,
			damage: func(t *testing.T, img string) {
				f, err := os.OpenFile(img, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteAt([]byte{0x42}, 512+48); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "GPT header at LBA 1: header CRC mismatch",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // sgdisk sleeps a second after every write
			img := filepath.Join(t.TempDir(), "disk.img")
			makeDisk(t, img, tc.size, tc.dataEnd)
			if tc.damage != nil {
				tc.damage(t, img)
			}
			if err := os.Truncate(img, tc.grownSize); err != nil {
				t.Fatal(err)
			}
			oldEnd := uint64(0)
			if tc.wantErr == "" {
				oldEnd = sgdiskEnd(t, img, 3)
			}
			res, err := growFile(t, img, tc.uuid)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), img) {
					t.Fatalf("err = %v, want one naming %s and containing %q", err, img, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.BackupMoved != tc.wantMoved || res.Grown() != tc.wantGrown || res.Partition != 3 {
				t.Errorf("result %+v: want moved=%v grown=%v partition 3", res, tc.wantMoved, tc.wantGrown)
			}
			if res.Start != dataStart*512 || res.OldSize != int64(oldEnd-dataStart+1)*512 || res.NewSize != int64(tc.wantEnd-dataStart+1)*512 {
				t.Errorf("result %+v: want start %d, old size %d, new size %d", res, dataStart*512, (oldEnd-dataStart+1)*512, (tc.wantEnd-dataStart+1)*512)
			}
			sgdiskVerify(t, img)
			if got := sgdiskEnd(t, img, 3); got != tc.wantEnd {
				t.Errorf("sgdisk: data partition ends at LBA %d, want %d", got, tc.wantEnd)
			}
			if got := sgdiskEnd(t, img, 2); got != dataStart-1 {
				t.Errorf("sgdisk: root partition ends at LBA %d, want it untouched at %d", got, dataStart-1)
			}
			if got := mbrSize(t, img); got != tc.wantMBRSize {
				t.Errorf("protective MBR covers %d sectors, want %d", got, tc.wantMBRSize)
			}
			// A second boot with the same disk has nothing to do.
			again, err := growFile(t, img, tc.uuid)
			if err != nil {
				t.Fatal(err)
			}
			if again.Changed || again.NewSize != res.NewSize {
				t.Errorf("second run changed the disk: %+v", again)
			}
		})
	}
}

func mbrSize(t *testing.T, img string) uint32 {
	b := make([]byte, 512)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if b[446+4] != 0xee {
		t.Fatalf("no protective MBR entry: type %#x", b[446+4])
	}
	return binary.LittleEndian.Uint32(b[446+12:])
}

// TestOldBackupWiped checks that no stale "EFI PART" is left where the backup used to be.
func TestOldBackupWiped(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	makeDisk(t, img, 64*mib, "+8M")
	if err := os.Truncate(img, 128*mib); err != nil {
		t.Fatal(err)
	}
	if _, err := growFile(t, img, dataUUID); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "EFI PART"); n != 2 {
		t.Errorf("found %d GPT headers on disk, want 2 (primary and backup)", n)
	}
}

func TestParseExt4Super(t *testing.T) {
	sb := func(logBS, lo, hi, incompat uint32, magic uint16) []byte {
		b := make([]byte, 1024)
		binary.LittleEndian.PutUint32(b[0x04:], lo)
		binary.LittleEndian.PutUint32(b[0x18:], logBS)
		binary.LittleEndian.PutUint16(b[0x38:], magic)
		binary.LittleEndian.PutUint32(b[0x60:], incompat)
		binary.LittleEndian.PutUint32(b[0x150:], hi)
		return b
	}
	tests := []struct {
		name       string
		sb         []byte
		wantBS     int64
		wantBlocks uint64
		wantErr    string
	}{
		{"4k blocks", sb(2, 262144, 0, 0, 0xef53), 4096, 262144, ""},
		{"1k blocks", sb(0, 8192, 0, 0, 0xef53), 1024, 8192, ""},
		{"64bit uses hi", sb(2, 5, 1, 0x80, 0xef53), 4096, 1<<32 | 5, ""},
		{"hi ignored without 64bit", sb(2, 5, 1, 0, 0xef53), 4096, 5, ""},
		{"not ext4", sb(2, 5, 0, 0, 0x1234), 0, 0, "no ext4 superblock"},
		{"absurd block size", sb(20, 5, 0, 0, 0xef53), 0, 0, "invalid block size"},
	}
	for _, tc := range tests {
		bs, blocks, err := parseExt4Super("/dev/x", tc.sb)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || bs != tc.wantBS || blocks != tc.wantBlocks {
			t.Errorf("%s: got %d, %d, %v; want %d, %d", tc.name, bs, blocks, err, tc.wantBS, tc.wantBlocks)
		}
	}
}

// TestLoopFullFlow runs what the initramfs does, on a loop device: GPT rewrite and BLKPG while
// another partition of the disk is open, then mount and EXT4_IOC_RESIZE_FS, then a second boot.
// The 4096-byte sector case checks LBA arithmetic that image files (always 512) cannot reach.
func TestLoopFullFlow(t *testing.T) {
	testutil.Root(t, "loop devices and mount")
	needTools(t, "losetup", "partx", "sgdisk", "mkfs.ext4", "dumpe2fs", "e2fsck")
	for _, tc := range []struct{ sector, block int }{{512, 4096}, {512, 1024}, {4096, 4096}} {
		t.Run(fmt.Sprintf("%d-byte sectors, %d-byte blocks", tc.sector, tc.block), func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "disk.img")
			if err := os.WriteFile(img, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, 64*mib); err != nil {
				t.Fatal(err)
			}
			loop := testutil.Loop(t, img, "-P", "--sector-size", strconv.Itoa(tc.sector))
			// Partitioned through the loop device so sgdisk uses its sector size; 1 MiB aligned.
			testutil.Run(t, "sgdisk", "-n1:0:+8M", "-t1:ef00", "-n2:0:+16M", "-u2:"+rootUUID, "-n3:0:+8M", "-u3:"+dataUUID, loop)
			addPartitions(t, loop)
			part := loop + "p3"
			testutil.Run(t, "mkfs.ext4", "-q", "-F", "-b", strconv.Itoa(tc.block), part)

			// The disk grows (a bigger cloud volume) before the boot that grows the data partition.
			if err := os.Truncate(img, 512*mib); err != nil {
				t.Fatal(err)
			}
			testutil.Run(t, "losetup", "-c", loop)

			// Root stays open, as it is in the initramfs by then: BLKRRPART would fail, BLKPG must not.
			rootFD, err := os.Open(loop + "p2")
			if err != nil {
				t.Fatal(err)
			}
			defer rootFD.Close()

			res, err := Grow(loop, dataUUID)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Changed || !res.BackupMoved || res.Start != 25*mib || res.OldSize != 8*mib || res.NewSize != (511-25)*mib {
				t.Fatalf("Grow: %+v, want data at 25 MiB grown from 8 MiB to %d bytes", res, (511-25)*mib)
			}
			if got := sysfsSize(t, part); got != res.NewSize {
				t.Fatalf("kernel sees %s with %d bytes after BLKPG, want %d", part, got, res.NewSize)
			}
			sgdiskVerify(t, loop)
			if got, want := sgdiskEnd(t, loop, 3), uint64(511*mib/tc.sector-1); got != want {
				t.Errorf("sgdisk: data partition ends at LBA %d, want %d", got, want)
			}
			// Second boot: the table already fits the disk.
			res2, err := Grow(loop, dataUUID)
			if err != nil || res2.Changed || res2.NewSize != res.NewSize {
				t.Errorf("second Grow: %+v, %v", res2, err)
			}

			mnt := filepath.Join(dir, "mnt")
			if err := os.Mkdir(mnt, 0o755); err != nil {
				t.Fatal(err)
			}
			err = unix.Mount(part, mnt, "ext4", 0, "")
			testutil.Need(t, err == nil, "mount ext4: %v", err)
			defer unix.Unmount(mnt, 0)
			if !haveCap(t, unix.CAP_SYS_RESOURCE) {
				// Containers often drop it, build sandboxes included. The growth itself is
				// TestVM's, in a guest with every capability; here the refusal must be the
				// capability's and nothing else's.
				if _, err := resizeExt4(mnt, res.NewSize); !errors.Is(err, unix.EPERM) {
					t.Fatalf("resizeExt4 without CAP_SYS_RESOURCE: err = %v, want EPERM", err)
				}
				t.Logf("no CAP_SYS_RESOURCE here: EXT4_IOC_RESIZE_FS refused with EPERM, growth checked by TestVM")
				return
			}
			var before, after unix.Statfs_t
			unix.Statfs(mnt, &before)
			fsr, err := resizeExt4(mnt, res.NewSize)
			if err != nil {
				t.Fatal(err)
			}
			if fsr.newBlocks <= fsr.oldBlocks || fsr.oldBlocks != uint64(8*mib/tc.block) || fsr.blockSize != int64(tc.block) {
				t.Errorf("resizeExt4: %+v, want grown from %d blocks of %d", fsr, 8*mib/tc.block, tc.block)
			}
			unix.Statfs(mnt, &after)
			if after.Blocks <= before.Blocks {
				t.Errorf("statfs blocks %d → %d, want growth", before.Blocks, after.Blocks)
			}
			if got := dumpe2fsBlocks(t, part); got != fsr.newBlocks {
				t.Errorf("dumpe2fs says %d blocks, resizeExt4 says %d", got, fsr.newBlocks)
			}
			fsr2, err := resizeExt4(mnt, res.NewSize)
			if err != nil || fsr2.newBlocks != fsr.newBlocks || fsr2.oldBlocks != fsr.newBlocks {
				t.Errorf("second resizeExt4: %+v, %v", fsr2, err)
			}
			if err := unix.Unmount(mnt, 0); err != nil {
				t.Fatal(err)
			}
			testutil.Run(t, "e2fsck", "-fn", part)
		})
	}
}

func TestResizeExt4RejectsOtherFS(t *testing.T) {
	if err := ResizeExt4("/proc", 1<<30); err == nil || !strings.Contains(err.Error(), "is not ext4") {
		t.Fatalf("err = %v", err)
	}
}

func haveCap(t *testing.T, c int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatalf("capget: %v", err)
	}
	return data[c/32].Effective&(1<<(c%32)) != 0
}

func sysfsSize(t *testing.T, dev string) int64 {
	b, err := os.ReadFile(filepath.Join("/sys/class/block", filepath.Base(dev), "size"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n * 512
}

func dumpe2fsBlocks(t *testing.T, dev string) uint64 {
	out := testutil.Run(t, "dumpe2fs", "-h", dev)
	m := regexp.MustCompile(`(?m)^Block count:\s+(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("dumpe2fs: no block count in\n%s", out)
	}
	v, _ := strconv.ParseUint(m[1], 10, 64)
	return v
}

// addPartitions makes the kernel know the loop device's partitions. Kernels built without the GPT
// parser (like some CI hosts) ignore the re-read sgdisk asks for; partx adds them via BLKPG then.
func addPartitions(t *testing.T, loop string) {
	t.Helper()
	if _, err := os.Stat(loop + "p1"); errors.Is(err, os.ErrNotExist) {
		testutil.Run(t, "partx", "-a", loop)
	}
}
