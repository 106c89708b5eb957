package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ballast-os/ballast/builder/sbom"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/format"
	"github.com/ballast-os/ballast/packages/digest"
	"github.com/ballast-os/ballast/trust/tpm/policy"
)

// convertFormats writes disk.<ext> for every requested format besides raw (which disk.raw is), and
// ami.json for ami.
func (b *builder) convertFormats(ctx context.Context) error {
	names := b.Formats
	if len(names) == 0 {
		names = b.v.Output.Formats
	}
	fs, err := outputFormats(names)
	if err != nil {
		return err
	}
	b.manifest = &Manifest{
		Variant: b.v.Name, Arch: b.arch, Version: b.version, Kernel: b.kernel.Version,
		RootHash: b.rootHash, Salt: b.boots[contract.SlotA].VeritySalt, DataBlocks: b.verity.DataBlocks,
		Cmdline: b.cmdlines[contract.SlotA], Slot: contract.SlotA, Entry: b.entry, Partitions: b.layout.Manifest(), Packages: b.pinned,
		Files: map[string]FileInfo{}, Outputs: map[string]FileInfo{}, Inputs: b.inputs, PCR11: b.pcr11,
	}
	if b.keys != nil {
		fp, err := policy.Fingerprint(b.keys.PCRKey.Public())
		if err != nil {
			return err
		}
		b.manifest.Signing = &Signing{DBCert: b.keys.Fingerprint(), PCRKey: fp}
	}
	if err := b.record(b.manifest.Outputs, "disk.raw", b.diskPath); err != nil {
		return err
	}
	opts := formatOptions(b.v.Name, b.arch, b.version, b.v.Description, b.epoch, b.rootHash)
	for _, f := range fs {
		if f == format.Raw {
			continue
		}
		name := format.FileName(f)
		b.step("formats: %s", name)
		out := filepath.Join(b.Out, name)
		if err := format.Convert(ctx, b.diskPath, out, f, opts); err != nil {
			return err
		}
		if err := b.record(b.manifest.Outputs, name, out); err != nil {
			return err
		}
	}
	return nil
}

// outputFormats parses the requested formats and adds what they require, each before the first
// format that needs it and each once: ami describes disk.vmdk, which is then written even when
// vmdk is not asked for.
func outputFormats(names []string) ([]format.Format, error) {
	var fs []format.Format
	add := func(f format.Format) {
		if !slices.Contains(fs, f) {
			fs = append(fs, f)
		}
	}
	for _, n := range names {
		if n == FormatISO || n == FormatNetboot {
			continue // writeInstaller's
		}
		f, err := format.Parse(n)
		if err != nil {
			return nil, fmt.Errorf("--format: %w", err)
		}
		for _, r := range format.Requires(f) {
			add(r)
		}
		add(f)
	}
	return fs, nil
}

// formatOptions are the conversions' options: the time and UUID every format stamps, derived from
// the build so two builds give the same bytes, and the product the OVA and the AMI describe.
func formatOptions(variant string, arch contract.Arch, version, description string, epoch int64, rootHash string) format.Options {
	return format.Options{
		// VHD footers count from 2000; a tree without history builds at epoch 0.
		Time:        time.Unix(max(epoch, 946684800), 0).UTC(),
		UUID:        contract.DerivedUUID("disk-format-uuid", rootHash),
		Name:        "ballast-" + variant,
		Version:     version,
		Description: description,
		Arch:        arch,
	}
}

func (b *builder) record(m map[string]FileInfo, name, path string) error {
	fi, err := digest.Stat(path)
	if err != nil {
		return err
	}
	m[name] = fi
	return nil
}

// writeSBOM writes sbom.spdx.json: every Debian package, the kernel, and the Go modules linked into
// every Go binary of the image, read back from the binaries themselves.
func (b *builder) writeSBOM(context.Context) error {
	b.step("sbom: %d Debian packages, %d Ballast programs, %d Go components", len(b.pinned), len(b.bins), len(b.comps))
	in := sbom.Input{
		Image:   sbom.Image{Variant: b.v.Name, Version: b.version, FileName: "disk.raw", SHA256: b.manifest.Outputs["disk.raw"].SHA256},
		Created: time.Unix(b.epoch, 0).UTC(),
		Kernel:  sbom.Kernel{Package: b.v.Kernel.Package, Release: b.kernel.Version},
	}
	for _, p := range b.pinned {
		lic, ok := b.licenses[p.Name]
		if !ok {
			return fmt.Errorf("package %s: no licence recorded", p.Name)
		}
		mirror, err := b.fetch.BaseURL(p)
		if err != nil {
			return err
		}
		in.Debian = append(in.Debian, sbom.DebianPackage{Name: p.Name, Version: p.Version, SHA256: p.SHA256, Filename: p.Filename, License: lic, Mirror: mirror})
	}
	for _, p := range b.builtPrograms() {
		path := p.Path
		if p.Initramfs {
			path += " (initramfs)"
		}
		in.Go = append(in.Go, sbom.GoBinary{Path: path, HostPath: b.bins[p.Name], DevelVersion: b.version})
	}
	for _, c := range b.comps {
		// Built from the module directory, so the binary records its main module as (devel)
		// with the pinned version; a wrapper module is Ballast's own file, the pinned module
		// one of its dependencies with its version.
		devel := c.Component.Version
		if c.Component.Wrapper != "" {
			devel = b.version
		}
		for _, cb := range installed(c.Binaries, b.v.Dev) {
			in.Go = append(in.Go, sbom.GoBinary{Path: cb.InstallPath, HostPath: cb.HostPath, DevelVersion: devel})
		}
	}
	if b.pause != "" {
		in.Go = append(in.Go, sbom.GoBinary{Path: contract.PauseImageArchive + ":/pause", HostPath: b.pause, DevelVersion: b.version})
	}
	path := filepath.Join(b.Out, "sbom.spdx.json")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := sbom.Write(f, in); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return b.record(b.manifest.Outputs, "sbom.spdx.json", path)
}

// writeManifest records the intermediate artifacts and writes manifest.json, last: a manifest is
// the mark of a complete build.
func (b *builder) writeManifest(context.Context) error {
	// "uki" is the disk's UKI, slot A's.
	for name, p := range map[string]string{
		"root.erofs": b.rootImg, "verity": b.hashImg, "initramfs": filepath.Join(b.work, "initramfs.cpio.zst"),
		"uki": b.ukis[contract.SlotA], "uki-a": b.ukis[contract.SlotA], "uki-b": b.ukis[contract.SlotB],
		"systemd-boot": filepath.Join(b.work, b.loaderFile()),
	} {
		if err := b.record(b.manifest.Files, name, p); err != nil {
			return err
		}
	}
	mj, err := json.MarshalIndent(b.manifest, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.Out, "manifest.json"), append(mj, '\n'), 0o644)
}
