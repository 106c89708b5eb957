package pipeline

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/disk"
	"github.com/ballast-os/ballast/images/initrd"
	"github.com/ballast-os/ballast/images/uki"
)

// stubPath is the UKI stub inside the systemd-boot-efi package.
const stubPath = "usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// planLayout lays out the disk (partition UUIDs come from the root hash) and writes the kernel
// command line that names the partitions and the hash the initramfs is to trust.
func (b *builder) planLayout(context.Context) error {
	var err error
	b.layout, err = disk.Plan(disk.Sizes{
		ESP: int64(b.v.Partitions.ESP), Root: int64(b.v.Partitions.Root),
		Verity: int64(b.v.Partitions.Verity), Data: int64(b.v.Partitions.Data),
	}, b.verity.RootHash)
	if err != nil {
		return err
	}
	slot := contract.SlotA
	b.boot = contract.Boot{RootHash: b.rootHash, Slot: slot, VerityBlocks: b.verity.DataBlocks, VeritySalt: hex.EncodeToString(b.salt)}
	for _, u := range []struct {
		name contract.PartitionName
		dst  *contract.UUID
	}{{slot.Root(), &b.boot.Root}, {slot.Verity(), &b.boot.Verity}, {contract.PartData, &b.boot.Data}} {
		if *u.dst, err = b.layout.UUID(u.name); err != nil {
			return err
		}
	}
	if err := b.boot.Validate(); err != nil {
		return err
	}
	// Ballast's own words first: a variant's word with the same key comes later and wins.
	line := contract.ImageParams()
	for _, w := range b.v.Kernel.Cmdline {
		line = append(line, contract.ParseCmdline(w)...)
	}
	line = append(line, b.boot.Params()...)
	b.cmdline, err = line.Format()
	if err != nil {
		return fmt.Errorf("%s: kernel.cmdline: %w", b.v.Path, err)
	}
	return nil
}

// buildInitramfs packs the initramfs init and the boot modules with their modules.dep.
func (b *builder) buildInitramfs(context.Context) error {
	b.step("initramfs: init + %d boot modules", len(b.v.Kernel.InitramfsModules))
	mods, dep, err := b.kernel.Modules("kernel.initramfs-modules", b.v.Kernel.InitramfsModules)
	if err != nil {
		return fmt.Errorf("%s: %w", b.v.Path, err)
	}
	var files []initrd.File
	for _, p := range b.builtPrograms() {
		if !p.Initramfs {
			continue
		}
		data, err := os.ReadFile(b.bins[p.Name])
		if err != nil {
			return err
		}
		files = append(files, initrd.File{Path: strings.TrimPrefix(p.Path, "/"), Data: data, Mode: 0o755})
	}
	base := strings.TrimPrefix(contract.KernelModules, "/") + "/" + b.kernel.Version + "/"
	for _, m := range mods {
		data, err := os.ReadFile(filepath.Join(b.kernel.ModDir, filepath.FromSlash(m.Path)))
		if err != nil {
			return err
		}
		files = append(files, initrd.File{Path: base + m.Path, Data: data, Mode: 0o644})
	}
	files = append(files, initrd.File{Path: base + "modules.dep", Data: dep, Mode: 0o644})
	if b.BenchWithoutSELinux {
		if !b.v.Dev {
			return fmt.Errorf("variant %s: a production variant is never built without its SELinux policy", b.v.Path)
		}
		files = append(files, initrd.File{Path: strings.TrimPrefix(contract.InitramfsWithoutSELinux, "/"), Data: []byte("benchmark image\n"), Mode: 0o644})
	}
	var buf bytes.Buffer
	if err := initrd.Build(&buf, files); err != nil {
		return err
	}
	b.initrd = buf.Bytes()
	return os.WriteFile(filepath.Join(b.work, "initramfs.cpio.zst"), b.initrd, 0o644)
}

// buildUKI assembles the Unified Kernel Image: stub, kernel, initramfs, command line, os-release.
func (b *builder) buildUKI(context.Context) error {
	b.step("uki: kernel %s, initramfs %d KiB", b.kernel.Version, len(b.initrd)>>10)
	stub, err := os.ReadFile(filepath.Join(b.stubDir, stubPath))
	if err != nil {
		return fmt.Errorf("%s: %w", stubPackage, err)
	}
	linux, err := os.ReadFile(b.kernel.Vmlinuz)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	err = uki.Build(&out, stub, uki.Sections{
		Linux: linux, Initrd: b.initrd, Cmdline: b.cmdline,
		OSRelease: b.osRelease(), Uname: b.kernel.Version,
	})
	if err != nil {
		return err
	}
	b.uki = out.Bytes()
	return os.WriteFile(filepath.Join(b.work, "BOOTX64.EFI"), b.uki, 0o644)
}
