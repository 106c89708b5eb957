// Package initramfs is the initramfs init's work: from the kernel command line to a verified, read-only
// root with /local, /etc and /var prepared, then switch_root to the system init.
package initramfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ballast-os/ballast/init/entropy"

	"github.com/ballast-os/ballast/contract"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/initramfs/blockdev"
	"github.com/ballast-os/ballast/init/initramfs/dm"
	"github.com/ballast-os/ballast/init/initramfs/growpart"
	"github.com/ballast-os/ballast/init/kmod"
)

// Paths inside the initramfs and the new root.
const (
	NewRoot        = contract.NewRoot
	SystemInit     = contract.SystemInitPath
	partitionWait  = 10 * time.Second
	verityDevName  = "root"
	verityDevNode  = "/dev/ballast-root"
	dataMountFlags = unix.MS_NOATIME | unix.MS_NODEV | unix.MS_NOSUID
)

// Run takes the boot from the initramfs to the point where the system init can be exec'd in
// NewRoot. It does not switch_root itself, so each step can be reported before the point of no return.
func Run(ctx context.Context, con *console.Writer) error {
	if err := mountEarly(); err != nil {
		return err
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return fmt.Errorf("read /proc/cmdline: %w", err)
	}
	p, err := contract.ParseBoot(contract.ParseCmdline(string(cmdline)))
	if err != nil {
		return err
	}
	con.Milestone("initramfs", "slot=%s roothash=%s", p.Slot, p.RootHash)
	// The kernel gathers jitter entropy only while someone waits for its pool; waiting from here
	// on, beside the module loading and the verity setup, means the pool is usually ready before
	// the system init needs it. The wait is cut short by switch_root's exec, and PID 1 waits again.
	go func() {
		if d, err := entropy.Gather(ctx); err == nil && d > 0 {
			con.Milestone("random", "pool ready in the initramfs after %.2fs", d.Seconds())
		}
	}()

	l, err := kmod.New("/", "")
	if err != nil {
		return err
	}
	if err := l.LoadAll(); err != nil {
		return err
	}
	con.Milestone("modules", "loaded %d boot modules", l.Count())

	parts, err := blockdev.WaitPartUUIDs(ctx, map[string]string{
		"root":   p.Root.String(),
		"verity": p.Verity.String(),
		"data":   p.Data.String(),
	}, partitionWait)
	if err != nil {
		return fmt.Errorf("partitions: %w", err)
	}
	root, hash, data := parts["root"], parts["verity"], parts["data"]
	con.Milestone("partitions", "root=%s verity=%s data=%s", root.Dev, hash.Dev, data.Dev)

	if err := setupVerity(p, root, hash); err != nil {
		return err
	}
	if err := unix.Mount(verityDevNode, NewRoot, "erofs", unix.MS_RDONLY|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mount verity root %s (EROFS) on %s: %w", verityDevNode, NewRoot, err)
	}
	con.Milestone("root", "verity root mounted read-only (%d blocks)", p.VerityBlocks)
	if img, err := contract.ReadImage(NewRoot); err == nil {
		n := prefetch(NewRoot, bootPrograms(img))
		con.Milestone("prefetch", "%d MiB of programs", n>>20)
	}

	if err := mountData(con, data); err != nil {
		return err
	}
	if err := prepareEtc(); err != nil {
		return err
	}
	if err := bindVar(); err != nil {
		return err
	}
	return nil
}

func mountEarly() error {
	for _, m := range []struct {
		src, dst, fstype string
		flags            uintptr
		data             string
	}{
		{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
		// Moved into the new root: sockets, logs and state, never programs.
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "mode=0755"},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", m.dst, err)
		}
		if err := unix.Mount(m.src, m.dst, m.fstype, m.flags, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dst, err)
		}
	}
	return nil
}

func setupVerity(p contract.Boot, root, hash blockdev.Partition) error {
	if need := int64(p.VerityBlocks) * contract.VerityBlockSize; root.Size < need {
		return fmt.Errorf("verity: root partition %s (PARTUUID=%s) holds %d bytes, the command line covers %d", root.Dev, p.Root, root.Size, need)
	}
	target, err := dm.Verity{
		DataDev:          fmt.Sprintf("%d:%d", root.Major, root.Minor),
		HashDev:          fmt.Sprintf("%d:%d", hash.Major, hash.Minor),
		DataBlockSize:    4096,
		HashBlockSize:    4096,
		DataBlocks:       p.VerityBlocks,
		HashStartBlock:   1, // block 0 is the veritysetup superblock
		Algorithm:        "sha256",
		RootHash:         p.RootHash,
		Salt:             p.VeritySalt,
		RestartOnCorrupt: true,
	}.Target()
	if err != nil {
		return fmt.Errorf("verity: %w", err)
	}
	dev, err := dm.CreateDevice(verityDevName, "BALLAST-VERITY-"+p.RootHash[:32], true, []dm.Target{target})
	if err != nil {
		return fmt.Errorf("verity: create device over %s and %s: %w", root.Dev, hash.Dev, err)
	}
	if err := unix.Mknod(verityDevNode, unix.S_IFBLK|0o600, int(dev)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("verity: mknod %s: %w", verityDevNode, err)
	}
	return nil
}

func mountData(con *console.Writer, data blockdev.Partition) error {
	res, err := growpart.Grow(data.Disk, data.PartUUID)
	if err != nil {
		// A disk we cannot grow is still a disk we can boot from.
		con.Errorf("data: grow %s: %v (continuing at the current size)", data.Dev, err)
	}
	mnt := filepath.Join(NewRoot, contract.LocalDir)
	if err := unix.Mount(data.Dev, mnt, "ext4", dataMountFlags, ""); err != nil {
		return fmt.Errorf("data: mount %s (PARTUUID=%s) on /local: %w", data.Dev, data.PartUUID, err)
	}
	// Resize on every boot, not only when the table changed: a power cut between the table rewrite
	// and the resize would otherwise leave the filesystem small for good. With nothing to do it only
	// reads the superblock.
	size := max(res.NewSize, data.Size)
	if err := growpart.ResizeExt4(mnt, size); err != nil {
		con.Errorf("data: resize ext4 on %s to %d bytes: %v", data.Dev, size, err)
	}
	if res.Changed {
		con.Milestone("data", "grown from %d MiB to %d MiB", res.OldSize>>20, res.NewSize>>20)
	} else {
		con.Milestone("data", "partition kept at %d MiB", size>>20)
	}
	return nil
}

// prepareEtc puts a tmpfs on /etc and fills it from the image's factory defaults: /etc is writable
// for rendered configuration, yet every boot starts from what the verified image says. It holds
// configuration only, so nothing on it may be executed.
func prepareEtc() error {
	etc := filepath.Join(NewRoot, "etc")
	if err := unix.Mount("tmpfs", etc, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755"); err != nil {
		return fmt.Errorf("etc: mount tmpfs: %w", err)
	}
	src := filepath.Join(NewRoot, contract.FactoryEtc)
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == src {
				return nil
			}
			return fmt.Errorf("etc: %w", err)
		}
		rel, _ := filepath.Rel(src, path)
		dst := filepath.Join(etc, rel)
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("etc: %w", err)
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, info.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(path)
			if err != nil {
				return fmt.Errorf("etc: %w", err)
			}
			return os.Symlink(t, dst)
		default:
			b, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("etc: %w", err)
			}
			return os.WriteFile(dst, b, info.Mode().Perm())
		}
	})
}

// bindVar makes /var the data partition's var directory, as on Bottlerocket.
func bindVar() error {
	src := filepath.Join(NewRoot, contract.VarOnData)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return fmt.Errorf("var: %w", err)
	}
	if err := unix.Mount(src, filepath.Join(NewRoot, contract.VarDir), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("var: bind /local/var: %w", err)
	}
	return nil
}
