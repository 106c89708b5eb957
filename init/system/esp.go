package system

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/efivar"
	"github.com/ballast-os/ballast/init/initramfs/blockdev"
	"github.com/ballast-os/ballast/init/system/mountinfo"
)

// efiDir exists when the kernel was booted through UEFI with its runtime services.
const efiDir = "/sys/firmware/efi"

// espType is the SELinux type of the ESP's files (selinux/policy/boot-health.cil): only the
// system init and the updater may change them.
const espType = "esp_t"

// espModules are what a vfat mount needs: the filesystem and the code pages of its default
// mount options (codepage=437, iocharset=ascii in Debian's kernel).
var espModules = []string{"vfat", "nls_cp437", "nls_ascii"}

// efivarsMount is efivarfs at contract.EFIVarsMount: the boot loader's variables.
func efivarsMount() mountSpec {
	return mountSpec{target: contract.EFIVarsMount, fstype: "efivarfs", source: "efivarfs",
		flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC}
}

// espMount is the ESP at contract.ESPMount. sync: a power cut right after a rename (the boot
// blessed or given up, an entry activated) must find it on the disk, and FAT has no journal.
// Only root reads it (umask), nothing runs from it, and with labelled every file is esp_t.
func espMount(dev string, labelled bool) mountSpec {
	data := "umask=0077"
	if labelled {
		data += ",context=" + contract.Context(espType, contract.SELinuxLevel, true)
	}
	return mountSpec{target: contract.ESPMount, fstype: "vfat", source: dev,
		flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_SYNCHRONOUS, data: data, mkdir: true}
}

// loader reads the boot loader's variables from efivarfs.
func (i *Init) loader() efivar.Loader {
	return efivar.Loader{Vars: efivar.Vars{Dir: i.path(contract.EFIVarsMount)}}
}

// mountEFI mounts efivarfs (on a UEFI boot) and the ESP. Neither is needed to run the host, so
// failures are reported and the boot goes on; without them the boot cannot be blessed.
func (i *Init) mountEFI() {
	mounts, err := mountinfo.ReadFile(i.path(mountinfo.Self))
	i.report("mounts", err)
	_, err = os.Stat(i.path(efiDir))
	uefi := err == nil
	if uefi {
		i.report("mounts", i.mountLoading(mounts, efivarsMount(), "efivarfs"))
	}
	err = i.mountESP(mounts)
	switch {
	case err == nil:
	case !uefi && errors.Is(err, errNoESP):
		i.console.Milestone("esp", "not mounted: not booted through UEFI (%v)", err)
	default:
		i.console.Errorf("esp: %v", err)
	}
}

// mountLoading makes a mount and, when the kernel lacks the filesystem, loads its modules and
// tries again. (The kernel asks Ballast's modprobe for a missing filesystem by itself; this also
// covers a kernel.modprobe that is not set yet or not there.)
func (i *Init) mountLoading(mounts []mountinfo.Mount, m mountSpec, modules ...string) error {
	err := i.mountOne(mounts, m)
	if !errors.Is(err, unix.ENODEV) {
		return err
	}
	if lerr := i.loadModules(modules...); lerr != nil {
		return fmt.Errorf("%w; loading %s: %v", err, strings.Join(modules, ","), lerr)
	}
	return i.mountOne(mounts, m)
}

// errNoESP: no partition is the ESP.
var errNoESP = errors.New("no ESP")

// mountESP finds the ESP and mounts it, unless something is mounted at contract.ESPMount already.
func (i *Init) mountESP(mounts []mountinfo.Mount) error {
	if _, ok := mountinfo.At(mounts, contract.ESPMount); ok {
		return nil
	}
	loaderUUID, err := i.loader().DevicePartUUID()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		// Not fatal: the disk of the root has the ESP the loader came from, unless it was another.
		i.console.Errorf("esp: %v; looking on the disk of the root", err)
	}
	cmdline, err := os.ReadFile(i.path("/proc/cmdline"))
	if err != nil {
		return fmt.Errorf("kernel command line: %w", err)
	}
	rootUUID := strings.ToLower(contract.ParseCmdline(string(cmdline)).Value(contract.ParamRoot))
	parts, scanErr := i.scanPartitions()
	p, err := chooseESP(parts, loaderUUID, rootUUID)
	if err != nil {
		if scanErr != nil {
			err = fmt.Errorf("%w; scan: %v", err, scanErr)
		}
		return err
	}
	_, err = os.Stat(i.path(contract.SELinuxEnforce))
	if err := i.mountLoading(mounts, espMount(i.machinePath(p.Dev), err == nil), espModules...); err != nil {
		return fmt.Errorf("%s (PARTUUID=%s): %w", p.Dev, p.PartUUID, err)
	}
	i.console.Milestone("esp", "%s mounted on %s", i.machinePath(p.Dev), contract.ESPMount)
	return nil
}

// chooseESP picks the ESP among the partitions: the one the loader says it came from
// (LoaderDevicePartUUID), else the partition labelled esp on the disk that holds the root
// partition (rootUUID, from the kernel command line).
func chooseESP(parts []blockdev.Partition, loaderUUID, rootUUID string) (blockdev.Partition, error) {
	if loaderUUID != "" {
		for _, p := range parts {
			if p.PartUUID == loaderUUID {
				return p, nil
			}
		}
		return blockdev.Partition{}, fmt.Errorf("%w: no partition has the loader's PARTUUID %s (%s)", errNoESP, loaderUUID, efivar.LoaderDevicePartUUID)
	}
	if rootUUID == "" {
		return blockdev.Partition{}, fmt.Errorf("%w: the kernel command line names no %s, so the boot disk is unknown", errNoESP, contract.ParamRoot)
	}
	for _, r := range parts {
		if r.PartUUID != rootUUID {
			continue
		}
		for _, p := range parts {
			if p.Disk == r.Disk && p.Name == string(contract.PartESP) {
				return p, nil
			}
		}
		return blockdev.Partition{}, fmt.Errorf("%w: no partition labelled %s on %s, the disk of the root", errNoESP, contract.PartESP, r.Disk)
	}
	return blockdev.Partition{}, fmt.Errorf("%w: no partition has the root's PARTUUID %s", errNoESP, rootUUID)
}

// scanPartitions lists the GPT partitions of the machine's disks.
func (i *Init) scanPartitions() ([]blockdev.Partition, error) {
	if i.partitions != nil {
		return i.partitions()
	}
	return blockdev.Scanner{SysDir: i.path("/sys"), DevDir: i.path("/dev")}.Scan()
}

// machinePath is the machine's own path of p, a path under Root: what the Kernel is given.
func (i *Init) machinePath(p string) string {
	rel, err := filepath.Rel(i.root, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return p
	}
	return "/" + rel
}
