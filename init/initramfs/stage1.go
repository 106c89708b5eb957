// Package initramfs is the initramfs init's work: from the kernel command line to a verified, read-only
// root and the SELinux policy loaded from it, enforcing (stage 1, as the kernel's process), then, re-exec'd
// in the initramfs domain, /local, /etc and /var prepared and labelled (stage 2), then switch_root to the
// system init.
package initramfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ballast-os/ballast/init/entropy"

	"github.com/ballast-os/ballast/contract"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/filecon"
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

// Run is the initramfs init's first stage, run as the kernel's process (kernel_t): from the
// command line to the verified root mounted on NewRoot and the SELinux policy loaded from it,
// enforcing. It returns what the second stage needs; the caller re-execs /init with State.Args so
// the rest of the initramfs runs in the domain the policy gives it.
func Run(ctx context.Context, con *console.Writer) (State, error) {
	if err := mountEarly(); err != nil {
		return State{}, err
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return State{}, fmt.Errorf("read /proc/cmdline: %w", err)
	}
	if c := contract.ParseCmdline(string(cmdline)); isInstall(c) {
		return State{}, install(ctx, con, c)
	}
	p, err := contract.ParseBoot(contract.ParseCmdline(string(cmdline)))
	if err != nil {
		return State{}, err
	}
	con.Milestone("initramfs", "slot=%s roothash=%s", p.Slot, p.RootHash)
	gatherEntropy(ctx, con)

	l, err := kmod.New("/", "")
	if err != nil {
		return State{}, err
	}
	if err := l.LoadAll(); err != nil {
		return State{}, err
	}
	boot := l.Count()
	plugged, err := l.Coldplug()
	if err != nil {
		con.Errorf("%v", err)
	}
	con.Milestone("modules", "loaded %d boot modules, %s", boot, onDemand(plugged))

	// Drivers loaded on demand make devices that want drivers of their own (a controller's disks).
	parts, err := blockdev.Scanner{Rescan: func() { Coldplug(con, l) }}.Wait(ctx, map[string]string{
		"root":   p.Root.String(),
		"verity": p.Verity.String(),
		"data":   p.Data.String(),
	}, partitionWait)
	if err != nil {
		return State{}, fmt.Errorf("partitions: %w", err)
	}
	root, hash, data := parts["root"], parts["verity"], parts["data"]
	con.Milestone("partitions", "root=%s verity=%s data=%s", root.Dev, hash.Dev, data.Dev)

	if err := setupVerity(p, root, hash); err != nil {
		return State{}, err
	}
	if err := unix.Mount(verityDevNode, NewRoot, "erofs", unix.MS_RDONLY|unix.MS_NODEV, ""); err != nil {
		return State{}, fmt.Errorf("mount verity root %s (EROFS) on %s: %w", verityDevNode, NewRoot, err)
	}
	con.Milestone("root", "verity root mounted read-only (%d blocks)", p.VerityBlocks)
	if data, err = openLocal(con, contract.ParseCmdline(string(cmdline)), data); err != nil {
		return State{}, err
	}
	// Before anything is written anywhere the system keeps: /local, /etc and /var are made
	// under the policy.
	// The programs are read into the page cache while the policy loads: reading is I/O, the
	// load is the kernel's work on the other CPU, and the exec into the second stage keeps the
	// page cache.
	fetched := make(chan int64, 1)
	go func() {
		var n int64
		if img, err := contract.ReadImage(NewRoot); err == nil {
			n = prefetch(NewRoot, bootPrograms(img))
		}
		fetched <- n
	}()
	defer func() { con.Milestone("prefetch", "%d MiB of programs", <-fetched>>20) }()
	if _, err := os.Stat(contract.InitramfsWithoutSELinux); err == nil {
		con.Milestone("selinux", "not loaded: a benchmark image, built without the policy")
		return State{Data: data}, nil
	}
	if err := kernelPolicyLoader().loadPolicy(con, NewRoot); err != nil {
		return State{}, err
	}
	return State{Data: data}, nil
}

// Coldplug loads the on-demand modules the devices present ask for (kmod.Loader.Coldplug) and
// says on the console what it loaded and what failed. Waits for disks call it at each poll.
func Coldplug(con *console.Writer, l *kmod.Loader) {
	plugged, err := l.Coldplug()
	if err != nil {
		con.Errorf("%v", err)
	}
	if len(plugged) > 0 {
		con.Milestone("modules", "loaded %s", onDemand(plugged))
	}
}

func onDemand(names []string) string {
	if len(names) == 0 {
		return "0 on demand"
	}
	return fmt.Sprintf("%d on demand (%s)", len(names), strings.Join(names, ","))
}

// gatherEntropy waits for the kernel's random pool in the background. The kernel gathers jitter
// entropy only while someone waits for its pool; waiting from here on, beside the module loading
// and the verity setup, means the pool is usually ready before the system init needs it. The
// wait is cut short by an exec: the second stage waits again, and so does PID 1.
func gatherEntropy(ctx context.Context, con *console.Writer) {
	go func() {
		if d, err := entropy.Gather(ctx); err == nil && d > 0 {
			con.Milestone("random", "pool ready in the initramfs after %.2fs", d.Seconds())
		}
	}()
}

// Stage2 is the initramfs init's second stage, exec'd by the first once the policy was loaded:
// it labels what the first stage made before there was a policy, mounts /local, prepares /etc
// and /var. The caller then switches to the system init.
func Stage2(ctx context.Context, con *console.Writer, st State) error {
	gatherEntropy(ctx, con)
	// Without a policy (a benchmark image) there is nothing to label with.
	_, err := os.Stat(contract.SELinuxEnforce)
	labels := err == nil
	fc, err := fileContexts(NewRoot)
	if err != nil {
		return err
	}
	if labels {
		if err := labelEarly(con, fc, filecon.XattrName); err != nil {
			return err
		}
	}
	if err := mountData(con, st.Data); err != nil {
		return err
	}
	// /local/var is made before the labels are checked, so it is labelled with the rest.
	if err := os.MkdirAll(filepath.Join(NewRoot, contract.VarOnData), 0o755); err != nil {
		return fmt.Errorf("var: %w", err)
	}
	if labels {
		if err := labelLocal(con, NewRoot, fc, filecon.XattrName); err != nil {
			return err
		}
	}
	if err := prepareEtc(fc, labels); err != nil {
		return err
	}
	return bindVar()
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

// mountData mounts /local from the device the first stage opened (the partition, or the
// dm-crypt device over it, already grown) and grows the file system to fill it.
func mountData(con *console.Writer, data blockdev.Partition) error {
	mnt := filepath.Join(NewRoot, contract.LocalDir)
	if err := unix.Mount(data.Dev, mnt, "ext4", dataMountFlags, ""); err != nil {
		return fmt.Errorf("data: mount %s (PARTUUID=%s) on /local: %w", data.Dev, data.PartUUID, err)
	}
	// Resize on every boot, not only when the table changed: a power cut between the table rewrite
	// and the resize would otherwise leave the filesystem small for good. With nothing to do it only
	// reads the superblock.
	if err := growpart.ResizeExt4(mnt, data.Size); err != nil {
		con.Errorf("data: resize ext4 on %s to %d bytes: %v", data.Dev, data.Size, err)
	}
	con.Milestone("local", "%s mounted, %d MiB", data.Dev, data.Size>>20)
	return keepRecoveryKey()
}

// prepareEtc puts a tmpfs on /etc and fills it from the image's factory defaults: /etc is writable
// for rendered configuration, yet every boot starts from what the verified image says. It holds
// configuration only, so nothing on it may be executed. Its root gets etc_t at the mount, so it
// is never unlabelled; each copy gets its factory file's label.
func prepareEtc(fc *filecon.Specs, labels bool) error {
	etc := filepath.Join(NewRoot, "etc")
	opts := "mode=0755"
	if labels {
		opts += ",rootcontext=" + etcContext
	}
	if err := unix.Mount("tmpfs", etc, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return fmt.Errorf("etc: mount tmpfs: %w", err)
	}
	xattr := filecon.XattrName
	if !labels {
		xattr = ""
	}
	return copyFactory(filepath.Join(NewRoot, contract.FactoryEtc), etc, "/etc", fc, xattr)
}

// copyFactory copies the tree at src to dst, which is path on the running system, labelling every
// copy (the directory dst itself is not).
func copyFactory(src, dst, path string, fc *filecon.Specs, xattr string) error {
	return filepath.WalkDir(src, func(from string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && from == src {
				return nil
			}
			return fmt.Errorf("etc: %w", err)
		}
		rel, _ := filepath.Rel(src, from)
		if rel == "." {
			return nil
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("etc: %w", err)
		}
		switch {
		case d.IsDir():
			err = os.Mkdir(to, info.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			var t string
			if t, err = os.Readlink(from); err == nil {
				err = os.Symlink(t, to)
			}
		default:
			var b []byte
			if b, err = os.ReadFile(from); err == nil {
				err = os.WriteFile(to, b, info.Mode().Perm())
			}
		}
		if err != nil {
			return fmt.Errorf("etc: %w", err)
		}
		if err := copyLabel(from, to, filepath.Join(path, rel), info.Mode(), fc, xattr); err != nil {
			return fmt.Errorf("etc: label %s: %w", filepath.Join(path, rel), err)
		}
		return nil
	})
}

// bindVar makes /var the data partition's var directory (made by Stage2), as on Bottlerocket.
func bindVar() error {
	src := filepath.Join(NewRoot, contract.VarOnData)
	if err := unix.Mount(src, filepath.Join(NewRoot, contract.VarDir), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("var: bind /local/var: %w", err)
	}
	return nil
}

func isInstall(c contract.Cmdline) bool {
	_, ok := c.Get(contract.ParamInstall)
	return ok
}
