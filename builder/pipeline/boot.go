package pipeline

import (
	"bytes"
	"compress/gzip"
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
	"github.com/ballast-os/ballast/trust/authenticode"
	"github.com/ballast-os/ballast/trust/sbkeys"
	"github.com/ballast-os/ballast/trust/tpm/pcr"
	"github.com/ballast-os/ballast/trust/tpm/policy"
)

// planLayout lays out the disk (slot A's partition UUIDs come from the root hash, the others
// from the variant's name) and writes each slot's kernel command line: the partitions and the
// hash the initramfs is to trust. Both slots' lines name the halves of this build's root hash,
// which the updater gives the partitions of slot B when it writes this version there.
func (b *builder) planLayout(context.Context) error {
	var err error
	b.layout, err = disk.Plan(b.arch, disk.Sizes{
		ESP: int64(b.v.Partitions.ESP), Root: int64(b.v.Partitions.Root),
		Verity: int64(b.v.Partitions.Verity), Data: int64(b.v.Partitions.Data),
	}, b.v.Name, b.verity.RootHash)
	if err != nil {
		return err
	}
	root, verity, err := contract.SlotUUIDs(b.verity.RootHash)
	if err != nil {
		return err
	}
	data, err := b.layout.UUID(contract.PartData)
	if err != nil {
		return err
	}
	b.boots = map[contract.Slot]contract.Boot{}
	b.cmdlines = map[contract.Slot]string{}
	for _, slot := range []contract.Slot{contract.SlotA, contract.SlotB} {
		boot := contract.Boot{RootHash: b.rootHash, Slot: slot, Root: root, Verity: verity, Data: data,
			VerityBlocks: b.verity.DataBlocks, VeritySalt: hex.EncodeToString(b.salt)}
		if err := boot.Validate(); err != nil {
			return err
		}
		// Ballast's own words first: a variant's word with the same key comes later and wins.
		line := contract.ImageParams()
		for _, w := range b.v.Kernel.Cmdline {
			line = append(line, contract.ParseCmdline(w)...)
		}
		// [console] after the variant's words, which then hold no console=: the last console=
		// is /dev/console.
		line = append(line, b.v.ConsoleParams()...)
		line = append(line, b.v.LocalPolicy().Params()...)
		line = append(line, boot.Params()...)
		if b.cmdlines[slot], err = line.Format(); err != nil {
			return fmt.Errorf("%s: kernel.cmdline: %w", b.v.Path, err)
		}
		b.boots[slot] = boot
	}
	// The disk's slot A must be where its UKI looks.
	for n, want := range map[contract.PartitionName]contract.UUID{contract.PartRootA: root, contract.PartVerityA: verity} {
		if got, err := b.layout.UUID(n); err != nil || got != want {
			return fmt.Errorf("layout: %s is %s, slot A's command line names %s (%v)", n, got, want, err)
		}
	}
	b.entry = contract.Entry{Generation: 1, Slot: contract.SlotA, Version: b.version}.FileName()
	return nil
}

// buildInitramfs packs the initramfs init, the boot modules and the hardware modules with their
// modules.dep, modules.alias and the list of those loaded on demand.
func (b *builder) buildInitramfs(context.Context) error {
	b.step("initramfs: init + %d boot modules, %d hardware modules", len(b.v.Kernel.InitramfsModules), len(b.v.Kernel.HardwareModules))
	set, err := b.kernel.ModuleSet("kernel.initramfs-modules", b.v.Kernel.InitramfsModules, b.v.Kernel.HardwareModules)
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
	for _, m := range set.Modules {
		data, err := os.ReadFile(filepath.Join(b.kernel.ModDir, filepath.FromSlash(m.Path)))
		if err != nil {
			return err
		}
		files = append(files, initrd.File{Path: base + m.Path, Data: data, Mode: 0o644})
	}
	files = append(files,
		initrd.File{Path: base + "modules.dep", Data: set.Dep, Mode: 0o644},
		initrd.File{Path: base + "modules.alias", Data: set.Alias, Mode: 0o644},
		initrd.File{Path: base + contract.ModulesOnDemand, Data: set.OnDemand, Mode: 0o644},
		initrd.File{Path: base + "modules.softdep", Data: set.Softdep, Mode: 0o644})
	tmpl, err := b.localTemplate()
	if err != nil {
		return err
	}
	files = append(files, initrd.File{Path: strings.TrimPrefix(contract.LocalTemplate, "/"), Data: tmpl, Mode: 0o644})
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

// localTemplate makes contract.LocalTemplate: a small ext4 with the data partition's identity,
// gzip-compressed without a name or time so the initramfs stays reproducible.
func (b *builder) localTemplate() ([]byte, error) {
	path := filepath.Join(b.work, "local-template.ext4")
	// 4096-byte blocks: the dm-crypt device has 4096-byte sectors, and ext4 refuses blocks smaller
	// than the device's sectors (mke2fs picks 1024 for a file system this small).
	if err := b.mkfsExt4(path, contract.LocalTemplateSize, "-b", "4096"); err != nil {
		return nil, fmt.Errorf("local template: %w", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// buildUKI assembles each slot's Unified Kernel Image: stub, kernel, initramfs, the slot's
// command line, and an os-release naming the entry (contract.OSRelease.EntryOSRelease). It
// predicts each UKI's PCR 11. A signed build also carries the owner's pcr public key (.pcrpkey,
// measured) and the signed policy for the predicted PCR 11 (.pcrsig, not measured), and signs the
// result with the db key for Secure Boot.
func (b *builder) buildUKI(context.Context) error {
	signed := "unsigned"
	if dir := b.v.KeysPath(); dir != "" {
		k, err := sbkeys.Load(dir)
		if err != nil {
			return fmt.Errorf("%s: secure-boot.keys: %w", b.v.Path, err)
		}
		b.keys = k
		signed = "signed with " + dir
	}
	b.step("uki: kernel %s, initramfs %d KiB, slots a and b, %s", b.kernel.Version, len(b.initrd)>>10, signed)
	stub, err := os.ReadFile(filepath.Join(b.stubDir, b.arch.SystemdStubFile()))
	if err != nil {
		return fmt.Errorf("%s: %w", stubPackage, err)
	}
	linux, err := os.ReadFile(b.kernel.Vmlinuz)
	if err != nil {
		return err
	}
	b.ukis = map[contract.Slot]string{}
	b.pcr11 = map[contract.Slot]string{}
	for _, slot := range []contract.Slot{contract.SlotA, contract.SlotB} {
		secs := uki.Sections{
			Linux: linux, Initrd: b.initrd, Cmdline: b.cmdlines[slot],
			OSRelease: b.osReleaseFields().EntryOSRelease(slot), Uname: b.kernel.Version,
		}
		if b.keys != nil {
			if secs.PCRPKey, err = b.keys.PCRPublicPEM(); err != nil {
				return err
			}
		}
		img, err := b.signedUKI(stub, secs)
		if err != nil {
			return fmt.Errorf("slot %s: %w", slot, err)
		}
		path := filepath.Join(b.work, "uki-"+string(slot)+".efi")
		if err := os.WriteFile(path, img, 0o644); err != nil {
			return err
		}
		if b.pcr11[slot], err = predictPCR11(img); err != nil {
			return fmt.Errorf("slot %s: %w", slot, err)
		}
		b.ukis[slot] = path
	}
	return nil
}

// signedUKI builds the UKI; with keys, it signs the PCR 11 the stub will measure into .pcrsig
// and the image with Authenticode.
func (b *builder) signedUKI(stub []byte, secs uki.Sections) ([]byte, error) {
	var out bytes.Buffer
	if err := uki.Build(&out, stub, secs); err != nil {
		return nil, err
	}
	if b.keys == nil {
		return out.Bytes(), nil
	}
	// .pcrsig is outside the measurement, so the image without it predicts the same PCR 11.
	pcr11, err := pcr.PredictUKIFile(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("predict PCR 11: %w", err)
	}
	entry, err := policy.NewEntry(pcr11.Bytes(), b.keys.PCRKey)
	if err != nil {
		return nil, err
	}
	if secs.PCRSig, err = policy.Marshal(policy.File{SHA256: []policy.Entry{entry}}); err != nil {
		return nil, err
	}
	out.Reset()
	if err := uki.Build(&out, stub, secs); err != nil {
		return nil, err
	}
	return authenticode.Sign(out.Bytes(), b.keys.DBCert, b.keys.DBKey)
}

// predictPCR11 is the PCR 11 systemd-stub 252 will measure for the finished image, hex.
func predictPCR11(img []byte) (string, error) {
	v, err := pcr.PredictUKIFile(img)
	if err != nil {
		return "", fmt.Errorf("predict PCR 11: %w", err)
	}
	return v.String(), nil
}
