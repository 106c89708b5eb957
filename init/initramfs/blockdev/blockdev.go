// Package blockdev finds GPT partitions by PARTUUID the way the initramfs needs it: without udev.
//
// The kernel announces partitions with PARTN/PARTNAME only, so the PARTUUID has to come from the
// GPT itself. Whole disks are listed from /sys/class/block, each disk's GPT is read from its /dev
// node, and GPT entry N is matched to the kernel's partition whose sysfs "partition" file says N,
// which also yields the right device name (vda3, nvme0n1p3, mmcblk0p3) without guessing.
package blockdev

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ballast-os/ballast/images/gpt"
	"golang.org/x/sys/unix"
)

const (
	defaultSysDir   = "/sys"
	defaultDevDir   = "/dev"
	defaultInterval = 50 * time.Millisecond
)

// Partition is a GPT partition the kernel knows about.
type Partition struct {
	PartUUID string // lower-case canonical form
	Dev      string // partition device node, e.g. /dev/vda3
	Disk     string // whole-disk device node, e.g. /dev/vda
	Number   int    // GPT entry index + 1, also the kernel's partition number
	Start    int64  // bytes from the start of the disk
	Size     int64  // bytes
	Major    uint32
	Minor    uint32
	TypeGUID string // lower-case canonical form
	Name     string // GPT partition name
}

// Scanner reads partition tables of the disks the kernel currently knows. The zero value uses /sys
// and /dev.
type Scanner struct {
	SysDir   string        // sysfs mount point; "" means /sys
	DevDir   string        // device directory; "" means /dev
	Interval time.Duration // poll interval for Wait; 0 means 50ms
	// Rescan, when set, is called by Wait after each scan that did not find every partition:
	// the initramfs loads the drivers of devices that appeared (the disks behind a controller).
	Rescan func()

	// node makes sure a device node exists at path; nil means ensureNode (mknod when devtmpfs has
	// not created it). Tests replace it to use image files as disks.
	node func(path string, major, minor uint32) error
}

func (s Scanner) sysDir() string {
	if s.SysDir == "" {
		return defaultSysDir
	}
	return s.SysDir
}

func (s Scanner) devDir() string {
	if s.DevDir == "" {
		return defaultDevDir
	}
	return s.DevDir
}

// WaitPartUUIDs waits with the default Scanner; see Scanner.Wait.
func WaitPartUUIDs(ctx context.Context, want map[string]string, timeout time.Duration) (map[string]Partition, error) {
	return Scanner{}.Wait(ctx, want, timeout)
}

// Wait polls until every wanted partition is present and returns them keyed like want. want maps a
// role ("root", "verity", "data") to a PARTUUID; the role only serves the error message, e.g.
// "root partition PARTUUID=… not found after 10s". A PARTUUID present on two disks is an error
// straight away: booting from whichever was scanned first would let a second disk take over.
func (s Scanner) Wait(ctx context.Context, want map[string]string, timeout time.Duration) (map[string]Partition, error) {
	norm := make(map[string]string, len(want))
	for role, u := range want {
		g, err := gpt.ParseGUID(u)
		if err != nil {
			return nil, fmt.Errorf("%s partition PARTUUID=%q: %w", role, u, err)
		}
		norm[role] = g.String()
	}
	interval := s.Interval
	if interval <= 0 {
		interval = defaultInterval
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		parts, scanErr := s.Scan()
		found, err := match(norm, parts)
		if err != nil || len(found) == len(norm) {
			return found, err
		}
		if s.Rescan != nil {
			s.Rescan()
		}
		select {
		case <-ctx.Done():
			return nil, missingError(norm, found, timeout, ctx.Err(), scanErr)
		case <-tick.C:
		}
	}
}

func match(want map[string]string, parts []Partition) (map[string]Partition, error) {
	found := make(map[string]Partition, len(want))
	for _, role := range sortedKeys(want) {
		u := want[role]
		for _, p := range parts {
			if p.PartUUID != u {
				continue
			}
			if prev, dup := found[role]; dup {
				return nil, fmt.Errorf("%s partition PARTUUID=%s found twice, on %s and %s", role, u, prev.Dev, p.Dev)
			}
			found[role] = p
		}
	}
	return found, nil
}

func missingError(want map[string]string, found map[string]Partition, timeout time.Duration, ctxErr, scanErr error) error {
	var msgs []string
	for _, role := range sortedKeys(want) {
		if _, ok := found[role]; !ok {
			msgs = append(msgs, fmt.Sprintf("%s partition PARTUUID=%s not found after %s", role, want[role], timeout))
		}
	}
	msg := strings.Join(msgs, "; ")
	if !errors.Is(ctxErr, context.DeadlineExceeded) {
		msg += " (" + ctxErr.Error() + ")"
	}
	if scanErr != nil {
		// Unreadable disks are the usual reason a partition is "missing"; say which.
		msg += "; scan: " + strings.ReplaceAll(scanErr.Error(), "\n", "; ")
	}
	return errors.New(msg)
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Scan returns the GPT partitions of all disks that have partitions the kernel knows about. Disks
// that cannot be read are reported in the joined error while the others are still returned; disks
// without a GPT are skipped silently.
func (s Scanner) Scan() ([]Partition, error) {
	classDir := filepath.Join(s.sysDir(), "class", "block")
	ents, err := os.ReadDir(classDir)
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	var parts []Partition
	var errs []error
	for _, e := range ents {
		ps, err := s.scanDisk(filepath.Join(classDir, e.Name()), e.Name())
		if err != nil {
			errs = append(errs, err)
		}
		parts = append(parts, ps...)
	}
	return parts, errors.Join(errs...)
}

// kernelPart is what sysfs says about one partition of a disk.
type kernelPart struct {
	name         string
	major, minor uint32
	startSector  int64 // in 512-byte units, as sysfs always reports
}

func (s Scanner) scanDisk(sysPath, name string) ([]Partition, error) {
	if exists(filepath.Join(sysPath, "partition")) {
		return nil, nil // a partition, not a disk
	}
	kparts, err := kernelPartitions(sysPath)
	if err != nil || len(kparts) == 0 {
		// No partitions known to the kernel (zram, empty loop devices, unpartitioned disks):
		// nothing to find there, and not worth opening the device.
		return nil, err
	}
	major, minor, err := readDev(sysPath)
	if err != nil {
		return nil, err
	}
	ss := 512
	if v, err := readInt(filepath.Join(sysPath, "queue", "logical_block_size")); err == nil && v > 0 {
		ss = int(v)
	}
	sectors, err := readInt(filepath.Join(sysPath, "size"))
	if err != nil {
		return nil, err
	}
	disk := s.devPath(name)
	tbl, err := s.readGPT(disk, major, minor, ss, sectors*512)
	if errors.Is(err, gpt.ErrNoGPT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var parts []Partition
	var errs []error
	for _, gp := range tbl.Partitions() {
		kp, ok := kparts[gp.Number]
		if !ok {
			continue // in the GPT but not (yet) added by the kernel, so not usable
		}
		start := int64(gp.FirstLBA) * int64(ss)
		if kp.startSector*512 != start {
			errs = append(errs, fmt.Errorf("%s: partition %d starts at byte %d in the GPT but at byte %d for the kernel", disk, gp.Number, start, kp.startSector*512))
			continue
		}
		dev := s.devPath(kp.name)
		if err := s.ensureNode(dev, kp.major, kp.minor); err != nil {
			errs = append(errs, err)
			continue
		}
		parts = append(parts, Partition{
			PartUUID: gp.ID.String(),
			Dev:      dev,
			Disk:     disk,
			Number:   gp.Number,
			Start:    start,
			Size:     int64(gp.Sectors()) * int64(ss),
			Major:    kp.major,
			Minor:    kp.minor,
			TypeGUID: gp.Type.String(),
			Name:     gp.Name,
		})
	}
	return parts, errors.Join(errs...)
}

// readGPT reads the primary GPT and falls back to the backup like the kernel does, so both agree
// on what exists when the primary copy is damaged.
func (s Scanner) readGPT(disk string, major, minor uint32, ss int, size int64) (*gpt.Table, error) {
	if err := s.ensureNode(disk, major, minor); err != nil {
		return nil, err
	}
	f, err := os.Open(disk)
	if err != nil {
		return nil, fmt.Errorf("open disk: %w", err)
	}
	defer f.Close()
	tbl, perr := gpt.ReadPrimary(f, ss)
	if perr == nil {
		return tbl, nil
	}
	tbl, berr := gpt.ReadBackup(f, ss, size)
	if berr == nil {
		return tbl, nil
	}
	if errors.Is(perr, gpt.ErrNoGPT) && errors.Is(berr, gpt.ErrNoGPT) {
		return nil, perr
	}
	return nil, fmt.Errorf("%s: primary GPT: %v; backup GPT: %v", disk, perr, berr)
}

func kernelPartitions(sysPath string) (map[int]kernelPart, error) {
	ents, err := os.ReadDir(sysPath)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", sysPath, err)
	}
	parts := map[int]kernelPart{}
	for _, e := range ents {
		p := filepath.Join(sysPath, e.Name())
		n, err := readInt(filepath.Join(p, "partition"))
		if err != nil {
			continue // not a partition directory (queue, holders, power, ...)
		}
		major, minor, err := readDev(p)
		if err != nil {
			return nil, err
		}
		start, err := readInt(filepath.Join(p, "start"))
		if err != nil {
			return nil, err
		}
		parts[int(n)] = kernelPart{name: e.Name(), major: major, minor: minor, startSector: start}
	}
	return parts, nil
}

// devPath maps a kernel device name to its node; "!" in sysfs names stands for "/" (cciss!c0d0).
func (s Scanner) devPath(name string) string {
	return filepath.Join(s.devDir(), strings.ReplaceAll(name, "!", "/"))
}

func (s Scanner) ensureNode(path string, major, minor uint32) error {
	if s.node != nil {
		return s.node(path, major, minor)
	}
	return ensureNode(path, major, minor)
}

// ensureNode creates a block device node if devtmpfs has not, and refuses a node that exists but
// points at another device, since reading it would attribute one disk's GPT to another.
func ensureNode(path string, major, minor uint32) error {
	want := unix.Mkdev(major, minor)
	var st unix.Stat_t
	err := unix.Stat(path, &st)
	if err == nil {
		if st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != want {
			return fmt.Errorf("%s exists but is not block device %d:%d", path, major, minor)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create node %s: %w", path, err)
	}
	if err := unix.Mknod(path, unix.S_IFBLK|0o600, int(want)); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("mknod %s (%d:%d): %w", path, major, minor, err)
	}
	return nil
}

func readDev(sysPath string) (major, minor uint32, err error) {
	b, err := os.ReadFile(filepath.Join(sysPath, "dev"))
	if err != nil {
		return 0, 0, err
	}
	maj, min, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%s/dev: malformed device number %q", sysPath, b)
	}
	return uint32(ma), uint32(mi), nil
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
