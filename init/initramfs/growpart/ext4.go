package growpart

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ext4IocResizeFS is EXT4_IOC_RESIZE_FS, _IOW('f', 16, __u64); x/sys does not define it.
const ext4IocResizeFS = 0x40086610

const (
	ext4SuperOffset    = 1024
	ext4Magic          = 0xef53
	ext4Incompat64Bit  = 0x80
	ext4SuperBlockSize = 1024
)

// fsResult describes what resizeExt4 did, in filesystem blocks.
type fsResult struct {
	blockSize int64
	oldBlocks uint64
	newBlocks uint64
}

// ResizeExt4 grows the ext4 filesystem mounted at mountpoint to newSizeBytes (in whole blocks) with
// EXT4_IOC_RESIZE_FS. It compares against the block count in the superblock, not statfs (which
// leaves out metadata overhead), so a filesystem that already fills its partition is left alone
// and nothing is logged: calling it on every boot is cheap. The kernel may stop a little short of
// the requested size when the last block group would be too small for its metadata.
func ResizeExt4(mountpoint string, newSizeBytes int64) error {
	_, err := resizeExt4(mountpoint, newSizeBytes)
	return err
}

func resizeExt4(mountpoint string, newSizeBytes int64) (fsResult, error) {
	var res fsResult
	var sfs unix.Statfs_t
	if err := unix.Statfs(mountpoint, &sfs); err != nil {
		return res, fmt.Errorf("resize ext4 at %s: %w", mountpoint, err)
	}
	if sfs.Type != unix.EXT4_SUPER_MAGIC {
		return res, fmt.Errorf("resize ext4 at %s: filesystem type %#x is not ext4", mountpoint, sfs.Type)
	}
	dev, err := mountDevice(mountpoint)
	if err != nil {
		return res, err
	}
	bs, blocks, err := readExt4Super(dev)
	if err != nil {
		return res, fmt.Errorf("resize ext4 at %s: %w", mountpoint, err)
	}
	res = fsResult{blockSize: bs, oldBlocks: blocks, newBlocks: blocks}
	target := uint64(newSizeBytes / bs)
	if target < blocks {
		return res, fmt.Errorf("resize ext4 at %s (%s): filesystem has %d blocks of %d bytes, more than the %d bytes asked for", mountpoint, dev, blocks, bs, newSizeBytes)
	}
	if target == blocks {
		return res, nil
	}
	dir, err := os.Open(mountpoint)
	if err != nil {
		return res, fmt.Errorf("resize ext4: %w", err)
	}
	defer dir.Close()
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, dir.Fd(), ext4IocResizeFS, uintptr(unsafe.Pointer(&target)))
	if errno != 0 {
		return res, fmt.Errorf("resize ext4 at %s (%s) from %d to %d blocks: EXT4_IOC_RESIZE_FS: %w", mountpoint, dev, blocks, target, errno)
	}
	if _, res.newBlocks, err = readExt4Super(dev); err != nil {
		return res, fmt.Errorf("resize ext4 at %s: after resize: %w", mountpoint, err)
	}
	return res, nil
}

// mountDevice finds the block device node behind a mount point through its st_dev and sysfs, so
// the caller needs to pass only the mount point.
func mountDevice(mountpoint string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(mountpoint, &st); err != nil {
		return "", fmt.Errorf("resize ext4 at %s: %w", mountpoint, err)
	}
	uevent := fmt.Sprintf("/sys/dev/block/%d:%d/uevent", unix.Major(st.Dev), unix.Minor(st.Dev))
	b, err := os.ReadFile(uevent)
	if err != nil {
		return "", fmt.Errorf("resize ext4 at %s: find its device: %w", mountpoint, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "DEVNAME="); ok {
			return filepath.Join("/dev", name), nil
		}
	}
	return "", fmt.Errorf("resize ext4 at %s: no DEVNAME in %s", mountpoint, uevent)
}

// readExt4Super returns the block size and block count from the ext4 superblock on dev. Reading
// the device while it is mounted is coherent: ext4 keeps its superblock in the device's page cache.
func readExt4Super(dev string) (blockSize int64, blocks uint64, err error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sb := make([]byte, ext4SuperBlockSize)
	if _, err := f.ReadAt(sb, ext4SuperOffset); err != nil {
		return 0, 0, fmt.Errorf("read ext4 superblock of %s: %w", dev, err)
	}
	return parseExt4Super(dev, sb)
}

func parseExt4Super(dev string, sb []byte) (int64, uint64, error) {
	le := binary.LittleEndian
	if le.Uint16(sb[0x38:]) != ext4Magic {
		return 0, 0, fmt.Errorf("%s: no ext4 superblock", dev)
	}
	logBS := le.Uint32(sb[0x18:])
	if logBS > 6 { // 64 KiB is the largest block size ext4 supports
		return 0, 0, fmt.Errorf("%s: ext4 superblock: invalid block size 1024<<%d", dev, logBS)
	}
	blocks := uint64(le.Uint32(sb[0x04:]))
	if le.Uint32(sb[0x60:])&ext4Incompat64Bit != 0 {
		blocks |= uint64(le.Uint32(sb[0x150:])) << 32
	}
	return 1024 << logBS, blocks, nil
}
