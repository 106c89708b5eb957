package userdata

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

	"golang.org/x/sys/unix"
)

// NoCloud finds user data the way cloud-init's NoCloud datasource does with a seed volume: a FAT or
// ISO9660 filesystem labelled "cidata" holding a file "user-data". It looks at block devices
// itself, by reading their first sectors, because the host has no udev or blkid.
type NoCloud struct {
	// SysBlock lists the block devices; default /sys/class/block.
	SysBlock string
	// DevDir holds their device nodes; default /dev.
	DevDir string
	// RunDir is where the volume is mounted for the moment it takes to read it; default /run.
	RunDir string
	// Label is the volume label looked for; default "cidata".
	Label string
	// Wait is how long to keep looking when no device has the label yet: virtio and CD-ROM
	// devices can appear a little after the first program runs.
	Wait time.Duration
	// BeforeMount, when set, is waited for once a volume is found and before it is mounted:
	// on a host, until the system init has loaded the file systems' modules. Finding the volume
	// needs no module, so a boot without one never waits.
	BeforeMount func(context.Context) error
}

// Device is a block device holding the seed volume.
type Device struct {
	Path   string // device node, e.g. /dev/vdb
	FSType string // FSVFAT or FSISO9660
}

func (n NoCloud) withDefaults() NoCloud {
	if n.SysBlock == "" {
		n.SysBlock = "/sys/class/block"
	}
	if n.DevDir == "" {
		n.DevDir = "/dev"
	}
	if n.RunDir == "" {
		n.RunDir = "/run"
	}
	if n.Label == "" {
		n.Label = "cidata"
	}
	return n
}

// Fetch finds the labelled volume, mounts it read-only, and reads user-data from it. No such
// volume, or one without user-data, is ErrNotFound.
func (n NoCloud) Fetch(ctx context.Context) ([]byte, string, error) {
	n = n.withDefaults()
	dev, err := n.Find(ctx)
	if err != nil {
		return nil, n.Label, err
	}
	origin := dev.Path + ":user-data"
	if n.BeforeMount != nil {
		// A failed wait is tried past: the mount says whether the module is there.
		if err := n.BeforeMount(ctx); err != nil && ctx.Err() != nil {
			return nil, origin, err
		}
	}
	b, err := n.read(dev)
	return b, origin, err
}

// Find returns the first block device, in name order, whose filesystem carries the label.
func (n NoCloud) Find(ctx context.Context) (Device, error) {
	n = n.withDefaults()
	return waitForDevice(ctx, n.Wait, func() (Device, error) {
		dev, ok, err := scanBlock(n.SysBlock, n.DevDir, func(_ *os.File, vol Volume) bool { return vol.HasLabel(n.Label) })
		if err == nil && !ok {
			err = fmt.Errorf("no block device labelled %q: %w", n.Label, ErrNotFound)
		}
		return dev, err
	})
}

// waitForDevice calls scan until it finds a device, fails otherwise than with ErrNotFound, or
// wait has passed.
func waitForDevice(ctx context.Context, wait time.Duration, scan func() (Device, error)) (Device, error) {
	deadline := time.Now().Add(wait)
	for {
		dev, err := scan()
		if err == nil || !errors.Is(err, ErrNotFound) || !time.Now().Before(deadline) {
			return dev, err
		}
		select {
		case <-ctx.Done():
			return Device{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// scanBlock returns the first block device, in name order, holding a FAT or ISO9660 volume that
// match accepts; match may read the device further through f.
func scanBlock(sysBlock, devDir string, match func(f *os.File, vol Volume) bool) (Device, bool, error) {
	entries, err := os.ReadDir(sysBlock)
	if err != nil {
		return Device{}, false, fmt.Errorf("list block devices: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		sys := filepath.Join(sysBlock, name)
		if sectors(sys) == 0 { // empty loop devices, CD-ROM drives without a disc
			continue
		}
		path := filepath.Join(devDir, devName(sys, name))
		if vol, ok := matchFile(path, match); ok {
			return Device{Path: path, FSType: vol.FSType}, true, nil
		}
	}
	return Device{}, false, nil
}

// sectors reads the device size in 512-byte sectors from sysfs; 0 when unknown.
func sectors(sys string) int64 {
	b, err := os.ReadFile(filepath.Join(sys, "size"))
	if err != nil {
		return 0
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// devName is the device node's name relative to /dev, from the kernel's uevent (which knows about
// nodes in subdirectories), falling back to the sysfs name.
func devName(sys, name string) string {
	b, err := os.ReadFile(filepath.Join(sys, "uevent"))
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "DEVNAME="); ok && v != "" {
				return v
			}
		}
	}
	return name
}

// matchFile detects the volume on the device at path and asks match about it. One unreadable
// device (a dm target being torn down, a drive without media) must not hide the volume looked for
// on another, so errors only mean no match.
func matchFile(path string, match func(f *os.File, vol Volume) bool) (Volume, bool) {
	f, err := os.Open(path)
	if err != nil {
		return Volume{}, false
	}
	defer f.Close()
	vol, err := Detect(f)
	if err != nil {
		return Volume{}, false
	}
	return vol, match(f, vol)
}

// read mounts the volume read-only on a fresh directory under RunDir, reads user-data and unmounts.
func (n NoCloud) read(dev Device) ([]byte, error) {
	return readMounted(dev, n.RunDir, "ballast-cidata-", func(dir string) ([]byte, error) {
		data, err := readLimited(filepath.Join(dir, "user-data"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s has no user-data: %w", dev.Path, ErrNotFound)
		}
		return data, err
	})
}

// readMounted mounts dev read-only (nosuid, nodev, noexec) on a fresh directory under runDir
// named with prefix, calls read with it, and unmounts and removes the directory again.
func readMounted(dev Device, runDir, prefix string, read func(dir string) ([]byte, error)) (data []byte, err error) {
	dir, err := os.MkdirTemp(runDir, prefix)
	if err != nil {
		return nil, fmt.Errorf("mount point: %w", err)
	}
	defer func() {
		if rerr := os.Remove(dir); rerr != nil && err == nil {
			err = fmt.Errorf("remove mount point: %w", rerr)
		}
	}()
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount(dev.Path, dir, dev.FSType, flags, ""); err != nil {
		return nil, fmt.Errorf("mount %s (%s) on %s: %w", dev.Path, dev.FSType, dir, err)
	}
	defer func() {
		if uerr := unmount(dir); uerr != nil && err == nil {
			err = uerr
		}
	}()
	return read(dir)
}

func unmount(dir string) error {
	err := unix.Unmount(dir, 0)
	if errors.Is(err, unix.EBUSY) {
		// Nothing of ours holds it open, so something else does; detach rather than leave the
		// seed volume mounted for the rest of the boot.
		err = unix.Unmount(dir, unix.MNT_DETACH)
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// MountAt finds the labelled volume and mounts it read-only (nosuid, nodev, noexec) at dir,
// where it stays: files shipped beside the user data, such as image archives, are read from
// there for as long as the host runs. A volume already mounted at dir is left as it is. No
// volume is ErrNotFound.
func (n NoCloud) MountAt(ctx context.Context, dir string) (Device, error) {
	n = n.withDefaults()
	dev, err := n.Find(ctx)
	if err != nil {
		return Device{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return dev, fmt.Errorf("mount point: %w", err)
	}
	var here, parent unix.Stat_t
	if unix.Stat(dir, &here) == nil && unix.Stat(filepath.Dir(dir), &parent) == nil && here.Dev != parent.Dev {
		return dev, nil
	}
	if n.BeforeMount != nil {
		if err := n.BeforeMount(ctx); err != nil && ctx.Err() != nil {
			return dev, err
		}
	}
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount(dev.Path, dir, dev.FSType, flags, ""); err != nil {
		return dev, fmt.Errorf("mount %s (%s) on %s: %w", dev.Path, dev.FSType, dir, err)
	}
	return dev, nil
}
