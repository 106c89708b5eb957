// Package installer is the metal variant's installer, run by the initramfs init when the
// command line has contract.ParamInstall: it finds the installer's source (the installer medium
// or a network boot URL), picks the target disk, refuses one that holds data unless told to
// wipe it, writes and verifies the disk image, gives the installed disk its user data as a seed
// partition, and reboots into it.
//
// Everything host-specific (sysfs, /dev, the command line, the ISO9660 reader and writer, the
// network, reboot and halt) is a field of Config, so tests install onto image files.
package installer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/console"
)

// Config is the host the installer runs on.
type Config struct {
	Cmdline contract.Cmdline
	SysDir  string // sysfs; "" means /sys
	DevDir  string // device nodes; "" means /dev

	// OpenMedium reads an ISO9660 volume: the installer medium and NoCloud volumes.
	OpenMedium MediumOpener
	// Volume writes the seed's NoCloud volume.
	Volume VolumeWriter
	// ReadFAT reads a file from a FAT NoCloud volume; nil means FAT volumes are reported as
	// unsupported. MountFAT is the real one.
	ReadFAT func(ctx context.Context, dev, name string, max int64) ([]byte, error)

	// Rescan is called between polls for the installer medium, to load the drivers of devices
	// that appeared since (coldplug).
	Rescan       func()
	MediumWait   time.Duration // how long to wait for the medium; 0 means 30 s
	DiskWait     time.Duration // how long to wait for a disk besides the medium; 0 means 20 s
	PollInterval time.Duration // 0 means 500 ms

	// Network brings up an address for a network install; nil means the network is up.
	Network    func(ctx context.Context) error
	HTTPClient *http.Client // nil means http.DefaultClient

	// DropCache makes the next reads of the target come from the device; nil means
	// BLKFLSBUF (block devices) and POSIX_FADV_DONTNEED.
	DropCache func(*os.File) error
	// Reread tells the kernel the target's partition table changed; nil means BLKRRPART on
	// block devices and nothing on files.
	Reread func(*os.File) error
	// Reboot restarts the machine after a successful install; nil means sync and
	// reboot(LINUX_REBOOT_CMD_RESTART).
	Reboot func() error
	// Halt keeps the machine stopped after a failure, showing msg; nil means repeating msg
	// every HaltRepeat until ctx ends (never, in the initramfs).
	Halt       func(ctx context.Context, con *console.Writer, msg string)
	HaltRepeat time.Duration // 0 means 30 s
	// Now dates the seed volume; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() *Config {
	if c.SysDir == "" {
		c.SysDir = "/sys"
	}
	if c.DevDir == "" {
		c.DevDir = "/dev"
	}
	if c.DiskWait == 0 {
		c.DiskWait = 20 * time.Second
	}
	if c.MediumWait == 0 {
		c.MediumWait = 30 * time.Second
	}
	if c.PollInterval == 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.DropCache == nil {
		c.DropCache = dropCache
	}
	if c.Reread == nil {
		c.Reread = reread
	}
	if c.Reboot == nil {
		c.Reboot = reboot
	}
	if c.HaltRepeat == 0 {
		c.HaltRepeat = 30 * time.Second
	}
	if c.Halt == nil {
		c.Halt = func(ctx context.Context, con *console.Writer, msg string) { halt(ctx, con, msg, c.HaltRepeat) }
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &c
}

// Run installs and reboots. On failure it prints "ballast: install failed: ..." and halts
// (Config.Halt) rather than return into a reboot that would start the installer again; the
// error is returned only once Halt returns.
func Run(ctx context.Context, con *console.Writer, cfg Config) error {
	c := cfg.withDefaults()
	if err := install(ctx, con, c); err != nil {
		msg := "install failed: " + err.Error()
		var de *DataError
		if errors.As(err, &de) {
			msg = "install stopped: " + err.Error() + "; nothing was written"
		}
		con.Milestone("install", "%s", strings.TrimPrefix(msg, "install "))
		c.Halt(ctx, con, msg)
		return err
	}
	con.Milestone("install", "done, rebooting")
	return c.Reboot()
}

func install(ctx context.Context, con *console.Writer, cfg *Config) error {
	src, err := openSource(ctx, cfg)
	if err != nil {
		return err
	}
	defer src.Close()
	m, err := readManifest(ctx, src.medium)
	if err != nil {
		return fmt.Errorf("%s: %w", src.desc, err)
	}
	con.Milestone("install", "source %s: %s %s %s, image %d MiB compressed, disk %d MiB",
		src.desc, m.Variant, m.Version, m.Arch, m.Image.Size>>20, m.Image.DiskSize>>20)

	medium := ""
	if src.dev != nil {
		medium = src.dev.Name()
	}
	t, err := waitTarget(ctx, cfg, m.Image.DiskSize, medium)
	if err != nil {
		return err
	}
	con.Milestone("install", "target %s", t.Describe())
	if len(t.findings) > 0 {
		con.Milestone("install", "overwriting %s (%s): %s", t.Dev, contract.ParamInstallWipe, findingsText(t.findings))
	}

	ud, err := findUserData(ctx, cfg, src, t.Dev, medium)
	if err != nil {
		return err
	}

	flags := os.O_RDWR
	if st, err := os.Stat(t.Dev); err == nil && st.Mode()&os.ModeDevice != 0 {
		flags |= unix.O_EXCL // a block device: refused while mounted or otherwise claimed
	}
	target, err := os.OpenFile(t.Dev, flags, 0)
	if err != nil {
		return fmt.Errorf("open target: %w", err)
	}
	defer target.Close()
	if err := write(ctx, con, target, t, src, m); err != nil {
		return err
	}
	if err := verify(ctx, target, m.Regions, cfg.DropCache); err != nil {
		return fmt.Errorf("verify %s: %w", t.Dev, err)
	}
	con.Milestone("install", "verified %d regions", len(m.Regions))

	res, err := finishDisk(target, t.Size, ud, cfg.Volume, cfg.Now())
	if err != nil {
		return err
	}
	if ud != nil {
		con.Milestone("install", "seed user-data (%d bytes from %s) in partition %d", len(ud.data), ud.origin, res.Partition)
	} else {
		con.Milestone("install", "seed none: no user data on the command line, a NoCloud volume or %s", src.desc)
	}
	if err := cfg.Reread(target); err != nil {
		// The reboot reads the table anyway; the kernel's view only matters until then.
		con.Errorf("install: re-read the partition table of %s: %v", t.Dev, err)
	}
	unix.Sync()
	return nil
}

// write streams the image onto the target and reports the throughput; a target that held data
// first loses its last MiB, where a stale backup GPT or RAID superblock would outlive the image.
func write(ctx context.Context, con *console.Writer, target *os.File, d verdict, src source, m *contract.InstallManifest) error {
	rc, size, err := src.medium.Open(ctx, m.Image.File)
	if err != nil {
		return fmt.Errorf("image on %s: %w", src.desc, err)
	}
	defer rc.Close()
	if size >= 0 && size != m.Image.Size {
		return fmt.Errorf("image %s on %s: %d bytes, install.json says %d", m.Image.File, src.desc, size, m.Image.Size)
	}
	if len(d.findings) > 0 {
		if err := zeroEnds(target, d.Size); err != nil {
			return fmt.Errorf("clear %s: %w", d.Dev, err)
		}
	}
	start := time.Now()
	last := start
	err = writeImage(ctx, target, rc, m.Image, func(n int64) {
		if time.Since(last) >= 10*time.Second {
			last = time.Now()
			con.Milestone("install", "writing: %d of %d MiB", n>>20, m.Image.DiskSize>>20)
		}
	})
	if err != nil {
		return err
	}
	s := time.Since(start).Seconds()
	con.Milestone("install", "wrote %d MiB in %.1f s (%.0f MiB/s)", m.Image.DiskSize>>20, s, float64(m.Image.DiskSize>>20)/max(s, 0.001))
	return nil
}

// waitTarget picks the target once the machine's disks have settled: drivers load on demand, and
// the disks behind a controller (and the SCSI disk driver itself) come a moment after it, so the
// list is read again, with a rescan between reads, until it has not changed for a few polls and
// holds a disk besides the medium, or until DiskWait is over.
func waitTarget(ctx context.Context, cfg *Config, size int64, medium string) (verdict, error) {
	spec, _ := cfg.Cmdline.Get(contract.ParamInstallDisk)
	_, wipe := cfg.Cmdline.Get(contract.ParamInstallWipe)
	const settlePolls = 4
	deadline := time.Now().Add(cfg.DiskWait)
	last, same := "", 0
	for {
		disks, err := listDisks(cfg.SysDir, cfg.DevDir)
		if err != nil {
			return verdict{}, err
		}
		var names []string
		others := 0
		for _, d := range disks {
			names = append(names, d.Name)
			// CD-ROM drives never take an image; the medium is not a target either.
			if d.Dev != medium && !strings.HasPrefix(d.Name, "sr") && d.Size > 0 {
				others++
			}
		}
		if key := strings.Join(names, ","); key == last {
			same++
		} else {
			last, same = key, 0
		}
		t, perr := pickTarget(judge(disks, size, medium), spec, cfg.DevDir, wipe)
		if (same >= settlePolls && others > 0) || !time.Now().Before(deadline) {
			return t, perr
		}
		if cfg.Rescan != nil {
			cfg.Rescan()
		}
		select {
		case <-ctx.Done():
			return verdict{}, ctx.Err()
		case <-time.After(cfg.PollInterval):
		}
	}
}
