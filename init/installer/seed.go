package installer

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/gpt"
)

// maxUserData bounds user data from every source, as the apiserver bounds what it reads.
const maxUserData = 128 << 10

// typeLinuxGeneric is the seed partition's GPT type, images/disk.TypeLinuxGeneric (a test keeps
// them equal): importing that package would bring the builder's output formats into the
// initramfs.
const typeLinuxGeneric = "0fc63daf-8483-4772-8e79-3d69d8477de4"

// seedMetaData is the NoCloud meta-data of every installed host: cloud-init's NoCloud needs an
// instance-id; Ballast reads none of it.
const seedMetaData = "instance-id: ballast-install\n"

// userData is user data and where it came from.
type userData struct {
	data   []byte
	origin string
}

// findUserData returns the installed host's user data from the first source that has some: the
// command line, a NoCloud volume (not on the disks in skip), the installer's source. None at
// all is not an error: the host then has only its image's defaults.
func findUserData(ctx context.Context, cfg *Config, src source, skip ...string) (*userData, error) {
	if v, ok := cfg.Cmdline.Get(contract.ParamUserData); ok {
		b, err := decodeCmdline(v)
		if err != nil {
			return nil, fmt.Errorf("%s=: %w", contract.ParamUserData, err)
		}
		return &userData{b, "the command line (" + contract.ParamUserData + ")"}, nil
	}
	if ud, err := noCloudUserData(ctx, cfg, skip); ud != nil || err != nil {
		return ud, err
	}
	b, err := readFile(ctx, src.medium, contract.InstallUserDataFile, maxUserData)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("user data on %s: %w", src.desc, err)
	}
	return &userData{b, src.desc + ":" + contract.InstallUserDataFile}, nil
}

// decodeCmdline decodes ballast.userdata= the way the apiserver does: standard or URL-safe
// base64, padding optional (a boot loader's editor makes '=' awkward).
func decodeCmdline(v string) ([]byte, error) {
	v = strings.TrimRight(v, "=")
	b, err := base64.RawStdEncoding.DecodeString(v)
	if err != nil {
		b, err = base64.RawURLEncoding.DecodeString(v)
	}
	switch {
	case err != nil:
		return nil, errors.New("not base64")
	case len(b) == 0:
		return nil, errors.New("empty")
	case len(b) > maxUserData:
		return nil, fmt.Errorf("%d bytes, more than the %d allowed", len(b), maxUserData)
	}
	return b, nil
}

// noCloudUserData reads user-data from the first block device (disk or partition, in name
// order) whose ISO9660 or FAT volume is labelled SeedLabel. A volume without user-data is passed
// over, as cloud-init would find nothing on it either.
func noCloudUserData(ctx context.Context, cfg *Config, skip []string) (*userData, error) {
	devs, err := blockDevices(cfg.SysDir, cfg.DevDir)
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		if skipped(d, skip) {
			continue
		}
		fstype, err := seedVolume(d)
		if err != nil || fstype == "" {
			continue // a drive without media, a device gone: nothing to read there
		}
		var b []byte
		switch fstype {
		case "iso9660":
			b, err = readISOFile(ctx, cfg, d, "user-data")
		case "vfat":
			if cfg.ReadFAT == nil {
				return nil, fmt.Errorf("NoCloud volume %s is FAT, which this installer cannot read", d)
			}
			b, err = cfg.ReadFAT(ctx, d, "user-data", maxUserData)
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("NoCloud volume %s (%s): %w", d, fstype, err)
		}
		return &userData{b, fmt.Sprintf("NoCloud volume %s", d)}, nil
	}
	return nil, nil
}

func skipped(dev string, skip []string) bool {
	for _, s := range skip {
		// A partition of a skipped disk is skipped too: /dev/sda1 of /dev/sda, /dev/nvme0n1p1.
		if s != "" && strings.HasPrefix(dev, s) {
			return true
		}
	}
	return false
}

// seedVolume says whether the device holds a volume labelled SeedLabel, and which file system.
func seedVolume(dev string) (string, error) {
	f, err := os.Open(dev)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 16*2048+72)
	n, err := f.ReadAt(head, 0)
	if n < 512 {
		return "", err
	}
	head = head[:n]
	if strings.EqualFold(isoVolumeID(head), contract.SeedLabel) {
		return "iso9660", nil
	}
	if fat, label := fatBootSector(head); fat != "" && strings.EqualFold(label, contract.SeedLabel) {
		return "vfat", nil
	}
	return "", nil
}

func readISOFile(ctx context.Context, cfg *Config, dev, name string) ([]byte, error) {
	if cfg.OpenMedium == nil {
		return nil, errors.New("no ISO9660 reader configured")
	}
	f, err := os.Open(dev)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := cfg.OpenMedium(f)
	if err != nil {
		return nil, err
	}
	return readFile(ctx, m, name, maxUserData)
}

// blockDevices lists the nodes of every block device with a size, partitions included.
func blockDevices(sysDir, devDir string) ([]string, error) {
	classDir := filepath.Join(sysDir, "class", "block")
	ents, err := os.ReadDir(classDir)
	if err != nil {
		return nil, fmt.Errorf("list block devices in %s: %w", classDir, err)
	}
	var devs []string
	for _, e := range ents {
		sys := filepath.Join(classDir, e.Name())
		if n, err := readInt(filepath.Join(sys, "size")); err != nil || n == 0 || hasPrefix(e.Name(), "ram", "zram") {
			continue
		}
		devs = append(devs, filepath.Join(devDir, devName(sys, e.Name())))
	}
	return devs, nil
}

// MountFAT reads a file from a FAT volume by mounting it read-only under dir for the moment it
// takes; the kernel's vfat driver must be there (built in or loaded).
func MountFAT(dir string) func(ctx context.Context, dev, name string, max int64) ([]byte, error) {
	return func(ctx context.Context, dev, name string, max int64) (b []byte, err error) {
		mnt, err := os.MkdirTemp(dir, "cidata-")
		if err != nil {
			return nil, err
		}
		defer os.Remove(mnt)
		flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if err := unix.Mount(dev, mnt, "vfat", flags, ""); err != nil {
			if errors.Is(err, unix.ENODEV) {
				return nil, errors.New("FAT is not supported here: the kernel has no vfat driver")
			}
			return nil, fmt.Errorf("mount %s (vfat) on %s: %w", dev, mnt, err)
		}
		defer func() {
			if uerr := unix.Unmount(mnt, unix.MNT_DETACH); uerr != nil && err == nil {
				err = fmt.Errorf("unmount %s: %w", mnt, uerr)
			}
		}()
		f, err := os.Open(filepath.Join(mnt, name))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b, err = io.ReadAll(io.LimitReader(f, max+1))
		if err == nil && int64(len(b)) > max {
			err = fmt.Errorf("%s: more than the %d bytes allowed", name, max)
		}
		return b, err
	}
}

// seedResult is what finishDisk did.
type seedResult struct {
	Partition int // the seed's partition number; 0 when there was no user data
}

// finishDisk makes the written image's GPT fit the target: the backup moves to the disk's real
// end and the protective MBR follows; with user data, a seed partition holding a NoCloud volume
// joins the table. The backup is written and synced before the primary, so a power cut leaves
// one valid table.
func finishDisk(target *os.File, diskSize int64, ud *userData, volume VolumeWriter, now time.Time) (seedResult, error) {
	var res seedResult
	tbl, err := gpt.ReadPrimary(target, imageSectorSize)
	if err != nil {
		return res, fmt.Errorf("%s: written image: %w", target.Name(), err)
	}
	sectors := uint64(diskSize / imageSectorSize)
	oldAlt := tbl.Header.AlternateLBA
	if oldAlt >= sectors {
		return res, fmt.Errorf("%s: the image's backup GPT at LBA %d lies beyond the disk's %d sectors", target.Name(), oldAlt, sectors)
	}
	tbl.Header.AlternateLBA = sectors - 1
	tbl.Header.LastUsableLBA = sectors - 2 - tbl.EntrySectors()

	if ud != nil {
		if volume == nil {
			return res, errors.New("seed: no volume writer configured")
		}
		n, err := addSeed(target, tbl, ud.data, volume, now)
		if err != nil {
			return res, fmt.Errorf("%s: seed: %w", target.Name(), err)
		}
		res.Partition = n
	}
	if err := tbl.Backup().Write(target); err != nil {
		return res, fmt.Errorf("%s: backup GPT: %w", target.Name(), err)
	}
	if err := target.Sync(); err != nil {
		return res, fmt.Errorf("sync %s: %w", target.Name(), err)
	}
	if err := tbl.Write(target); err != nil {
		return res, fmt.Errorf("%s: primary GPT: %w", target.Name(), err)
	}
	if err := gpt.FixProtectiveMBR(target, tbl.Header.AlternateLBA); err != nil {
		return res, fmt.Errorf("%s: %w", target.Name(), err)
	}
	// The image's own backup header now lies in free space; a stale copy there would confuse
	// recovery tools into seeing the table without the seed.
	if oldAlt != tbl.Header.AlternateLBA {
		if _, err := target.WriteAt(make([]byte, imageSectorSize), int64(oldAlt)*imageSectorSize); err != nil {
			return res, fmt.Errorf("%s: clear the image's backup GPT header at LBA %d: %w", target.Name(), oldAlt, err)
		}
	}
	if err := target.Sync(); err != nil {
		return res, fmt.Errorf("sync %s: %w", target.Name(), err)
	}
	return res, nil
}

// addSeed writes the NoCloud volume into SeedFirstLBA..SeedLastLBA and adds its partition to
// tbl in the first free entry; it returns the partition number.
func addSeed(target *os.File, tbl *gpt.Table, userData []byte, volume VolumeWriter, now time.Time) (int, error) {
	first, last := uint64(contract.SeedFirstLBA), uint64(contract.SeedLastLBA)
	if end := tbl.Header.EntriesLBA + tbl.EntrySectors(); tbl.Header.FirstUsableLBA > first || end > first {
		return 0, fmt.Errorf("the image's GPT uses LBAs up to %d, the seed starts at LBA %d", max(tbl.Header.FirstUsableLBA, end)-1, first)
	}
	number := 0
	for i := 1; i <= int(tbl.Header.NumEntries); i++ {
		used := false
		for _, p := range tbl.Partitions() {
			if p.Number == i {
				used = true
			}
			if p.Name == contract.SeedPartitionName {
				return 0, fmt.Errorf("the image already has a partition %q (number %d)", p.Name, p.Number)
			}
		}
		if !used && number == 0 {
			number = i
		}
	}
	if number == 0 {
		return 0, fmt.Errorf("no free entry in the GPT's %d", tbl.Header.NumEntries)
	}
	typ, err := gpt.ParseGUID(typeLinuxGeneric)
	if err != nil {
		return 0, err
	}
	p := gpt.Partition{
		Number:   number,
		Type:     typ,
		ID:       gpt.FromUUID(contract.DerivedUUID("seed", tbl.Header.DiskGUID.String())),
		FirstLBA: first,
		LastLBA:  last,
		Name:     contract.SeedPartitionName,
	}
	if err := tbl.SetPartition(p); err != nil {
		return 0, err
	}
	w := &boundedWriter{w: target, off: int64(first) * imageSectorSize, size: int64(last-first+1) * imageSectorSize}
	if _, err := target.WriteAt(make([]byte, w.size), w.off); err != nil {
		return 0, fmt.Errorf("clear the partition: %w", err)
	}
	files := []File{{Path: "meta-data", Data: []byte(seedMetaData)}, {Path: "user-data", Data: userData}}
	if _, err := volume(w, contract.SeedLabel, now, files); err != nil {
		return 0, fmt.Errorf("NoCloud volume: %w", err)
	}
	return number, nil
}

// boundedWriter is the partition as a WriterAt: offsets from its start, nothing past its end.
type boundedWriter struct {
	w         io.WriterAt
	off, size int64
}

func (b *boundedWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > b.size {
		return 0, fmt.Errorf("write of %d bytes at offset %d: the partition holds %d bytes", len(p), off, b.size)
	}
	return b.w.WriteAt(p, b.off+off)
}
