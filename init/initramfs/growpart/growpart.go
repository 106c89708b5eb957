// Package growpart grows Ballast's data partition, the last one on the disk, to fill a disk that is
// larger than the image it was written from, and then grows the ext4 filesystem on it online.
//
// The steps are separate so the caller can report each and so the GPT part can be tested on image
// files: GrowGPT rewrites the table, NotifyKernel tells the kernel the partition's new size with
// BLKPG (BLKRRPART would fail while any partition of the disk is in use, and the root partitions
// are by then), ResizeExt4 grows the mounted filesystem. Every step is idempotent and cheap when
// there is nothing to do, so callers should run ResizeExt4 on every boot, not only when Grow
// reports a change: then a crash between the GPT and the filesystem step is repaired by the next
// boot.
package growpart

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"github.com/ballast-os/ballast/images/gpt"
	"golang.org/x/sys/unix"
)

// alignment is where the grown partition ends: a multiple of 1 MiB, like every partition the
// builder lays out, so the filesystem's blocks stay aligned to any underlying erase/stripe unit.
const alignment = 1 << 20

// Result describes what GrowGPT did to a disk.
type Result struct {
	Disk        string // the disk's path, for messages
	Partition   int    // number of the data partition (GPT entry index + 1)
	Start       int64  // the partition's start in bytes
	OldSize     int64  // the partition's size in bytes before
	NewSize     int64  // the partition's size in bytes after
	BackupMoved bool   // the backup GPT was moved to the disk's end
	Changed     bool   // the GPT was rewritten (partition grown or backup moved)
}

// Grown reports whether the partition became larger.
func (r Result) Grown() bool { return r.NewSize > r.OldSize }

// Grow runs GrowGPT on the whole-disk device and, when the partition grew, NotifyKernel.
func Grow(diskPath, partUUID string) (Result, error) {
	f, err := os.OpenFile(diskPath, os.O_RDWR, 0)
	if err != nil {
		return Result{}, fmt.Errorf("growpart: %w", err)
	}
	defer f.Close()
	r, err := GrowGPT(f, partUUID)
	if err != nil || !r.Grown() {
		return r, err
	}
	return r, NotifyKernel(f, r)
}

// GrowGPT moves the backup GPT to the end of the disk (or image file) f, sets LastUsableLBA to
// match, and extends the partition with PARTUUID partUUID, which must be the last partition on the
// disk, to the new last usable LBA rounded down to 1 MiB. Nothing is written when the table already
// fits the disk. The primary table must be intact: the backup is rebuilt from it, never the other
// way round, so a damaged primary stops here with an error naming the disk.
func GrowGPT(f *os.File, partUUID string) (Result, error) {
	res := Result{Disk: f.Name()}
	want, err := gpt.ParseGUID(partUUID)
	if err != nil {
		return res, fmt.Errorf("growpart: %s: data partition: %w", f.Name(), err)
	}
	size, ss, err := diskGeometry(f)
	if err != nil {
		return res, err
	}
	tbl, err := gpt.ReadPrimary(f, ss)
	if err != nil {
		return res, fmt.Errorf("growpart: %s: %w", f.Name(), err)
	}
	p, err := lastPartition(tbl, want)
	if err != nil {
		return res, fmt.Errorf("growpart: %s: %w", f.Name(), err)
	}
	res.Partition = p.Number
	res.Start = int64(p.FirstLBA) * int64(ss)
	res.OldSize = int64(p.Sectors()) * int64(ss)
	res.NewSize = res.OldSize

	plan, err := planGrow(tbl, p, uint64(size/int64(ss)))
	if err != nil {
		return res, fmt.Errorf("growpart: %s: %w", f.Name(), err)
	}
	if !plan.moveBackup && plan.lastLBA == p.LastLBA {
		return res, nil
	}
	oldAlt := tbl.Header.AlternateLBA
	tbl.Header.AlternateLBA = plan.alternateLBA
	tbl.Header.LastUsableLBA = plan.lastUsableLBA
	if plan.lastLBA != p.LastLBA {
		if err := tbl.SetLastLBA(p.Number, plan.lastLBA); err != nil {
			return res, fmt.Errorf("growpart: %s: %w", f.Name(), err)
		}
	}
	if err := writeTables(f, tbl, oldAlt); err != nil {
		return res, fmt.Errorf("growpart: %s: %w", f.Name(), err)
	}
	res.BackupMoved = plan.moveBackup
	res.Changed = true
	res.NewSize = int64(plan.lastLBA-p.FirstLBA+1) * int64(ss)
	return res, nil
}

// lastPartition finds the partition with the wanted PARTUUID and makes sure none lies behind it,
// since growing it would otherwise run into its neighbour.
func lastPartition(tbl *gpt.Table, want gpt.GUID) (gpt.Partition, error) {
	var p gpt.Partition
	found := false
	for _, q := range tbl.Partitions() {
		if q.ID == want {
			p, found = q, true
		}
	}
	if !found {
		return p, fmt.Errorf("no partition with PARTUUID=%s", want)
	}
	for _, q := range tbl.Partitions() {
		if q.Number != p.Number && q.LastLBA > p.LastLBA {
			return p, fmt.Errorf("data partition %d (PARTUUID=%s) is not the last: partition %d ends at LBA %d, after it", p.Number, want, q.Number, q.LastLBA)
		}
	}
	return p, nil
}

type plan struct {
	moveBackup    bool
	alternateLBA  uint64
	lastUsableLBA uint64
	lastLBA       uint64 // new inclusive end of the partition
}

func planGrow(tbl *gpt.Table, p gpt.Partition, diskSectors uint64) (plan, error) {
	h := tbl.Header
	if h.AlternateLBA >= diskSectors {
		return plan{}, fmt.Errorf("disk has %d sectors but its GPT expects the backup header at LBA %d (disk smaller than the image?)", diskSectors, h.AlternateLBA)
	}
	alt := diskSectors - 1
	lastUsable := alt - tbl.EntrySectors() - 1
	if lastUsable < p.LastLBA {
		return plan{}, fmt.Errorf("partition %d ends at LBA %d, beyond the last usable LBA %d for this disk size", p.Number, p.LastLBA, lastUsable)
	}
	perMiB := uint64(alignment / tbl.SectorSize)
	end := (lastUsable+1)/perMiB*perMiB - 1
	if end < p.LastLBA {
		end = p.LastLBA // never shrink; an unaligned end from the builder stays as it is
	}
	return plan{
		moveBackup:    h.AlternateLBA != alt || h.LastUsableLBA != lastUsable,
		alternateLBA:  alt,
		lastUsableLBA: lastUsable,
		lastLBA:       end,
	}, nil
}

// writeTables writes the backup first and syncs, then the primary: until the primary is rewritten
// it still points at the old, intact backup, so an interrupted run leaves a consistent disk either
// way and the next boot simply does the work again.
func writeTables(f *os.File, primary *gpt.Table, oldAlt uint64) error {
	backup := primary.Backup()
	if err := backup.Write(f); err != nil {
		return fmt.Errorf("backup GPT: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync backup GPT: %w", err)
	}
	if err := primary.Write(f); err != nil {
		return fmt.Errorf("primary GPT: %w", err)
	}
	if err := gpt.FixProtectiveMBR(f, primary.Header.AlternateLBA); err != nil {
		return err
	}
	// The old backup header now lies in usable space (usually inside the grown partition). Wipe its
	// signature so recovery tools do not mistake it for a live table.
	if oldAlt != primary.Header.AlternateLBA && oldAlt < backup.Header.EntriesLBA {
		if _, err := f.WriteAt(make([]byte, primary.SectorSize), int64(oldAlt)*int64(primary.SectorSize)); err != nil {
			return fmt.Errorf("wipe old backup GPT header at LBA %d: %w", oldAlt, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync primary GPT: %w", err)
	}
	return nil
}

// diskGeometry returns the size in bytes and logical sector size of a block device, or of an image
// file (taken to have 512-byte sectors).
func diskGeometry(f *os.File) (size int64, sectorSize int, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("growpart: %w", err)
	}
	if fi.Mode().IsRegular() {
		return fi.Size(), 512, nil
	}
	fd := int(f.Fd())
	n, err := unix.IoctlGetUint64(fd, unix.BLKGETSIZE64)
	if err != nil {
		return 0, 0, fmt.Errorf("growpart: %s: BLKGETSIZE64: %w", f.Name(), err)
	}
	ss, err := unix.IoctlGetInt(fd, unix.BLKSSZGET)
	if err != nil {
		return 0, 0, fmt.Errorf("growpart: %s: BLKSSZGET: %w", f.Name(), err)
	}
	return int64(n), ss, nil
}

// NotifyKernel tells the kernel the partition's new size with BLKPG_RESIZE_PARTITION on the open
// whole-disk device; the kernel keeps the partition's device and its openers, only the size changes.
func NotifyKernel(disk *os.File, r Result) error {
	part := unix.BlkpgPartition{Start: r.Start, Length: r.NewSize, Pno: int32(r.Partition)}
	arg := unix.BlkpgIoctlArg{
		Op:      unix.BLKPG_RESIZE_PARTITION,
		Datalen: int32(unsafe.Sizeof(part)),
		Data:    (*byte)(unsafe.Pointer(&part)),
	}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, disk.Fd(), unix.BLKPG, uintptr(unsafe.Pointer(&arg)))
	runtime.KeepAlive(&part)
	if errno != 0 {
		return fmt.Errorf("growpart: %s: BLKPG resize partition %d to %d bytes: %w", disk.Name(), r.Partition, r.NewSize, errno)
	}
	return nil
}
