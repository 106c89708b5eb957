package contract

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// The installer: the metal variant's ISO and network boot artifacts carry a UKI with the same
// kernel and initramfs as the disk's, whose command line has ParamInstall. Its initramfs then
// writes the disk image to a target disk instead of booting a root, and reboots into it.
const (
	ParamInstall = "ballast.install" // present: install instead of booting a root
	// ParamInstallDisk names the target: a /dev path, a /dev/disk/by-id name (with or without
	// the directory), or InstallDiskAuto, the default: the only empty disk.
	ParamInstallDisk = "ballast.install.disk"
	// ParamInstallWipe lets the installer overwrite a target that holds data (a partition table,
	// a file system, anything but zeros where they live).
	ParamInstallWipe = "ballast.install.wipe"
	// ParamInstallSource is the http(s) URL of an InstallManifest (network boot); without it the
	// installer reads the installer medium, the ISO9660 volume labelled InstallVolumeID.
	ParamInstallSource = "ballast.install.source"
	InstallDiskAuto    = "auto"
)

// TagInstaller is the Go build tag that puts the installer into the initramfs init: the builder
// sets it for variants with the iso or netboot format, and other images' initramfs go without.
const TagInstaller = "ballast_installer"

// Files of the installer medium (root of the ISO9660 volume) and of the network boot directory.
const (
	InstallVolumeID     = "BALLAST_INSTALL"
	InstallManifestFile = "install.json"
	InstallImageFile    = "disk.raw.zst" // the disk image, zstd-compressed
	// InstallUserDataFile, when present on the medium, is user data for every host the medium
	// installs; user data from the command line or a NoCloud volume at install time wins.
	InstallUserDataFile = "user-data"
	InstallerUKIFile    = "installer.efi" // the netboot directory's UKI
)

// The seed: the installer gives the installed disk its user data as a NoCloud volume (ISO9660
// labelled "cidata") in a small partition of its own, in the space every Ballast disk leaves
// between the GPT's entries and its first partition. The host finds it at every boot the way it
// finds any NoCloud volume.
const (
	SeedPartitionName = "ballast-seed"
	SeedFirstLBA      = 64   // 512-byte sectors; the primary GPT's entries end at LBA 33
	SeedLastLBA       = 2047 // the first partition starts at 1 MiB
	SeedLabel         = "cidata"
)

// InstallManifest (install.json) says what the installer writes and how it checks it.
type InstallManifest struct {
	Variant string `json:"variant"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	// Image is the compressed disk image.
	Image InstallImage `json:"image"`
	// Regions cover the uncompressed image from 0 to Image.DiskSize without gaps, in order:
	// the primary GPT area, each partition, the tail with the backup GPT. The installer reads
	// each back from the target and compares.
	Regions []InstallRegion `json:"regions"`
}

// InstallImage is the compressed disk image of an InstallManifest.
type InstallImage struct {
	File        string `json:"file"`        // relative to install.json
	Compression string `json:"compression"` // "zstd"
	Size        int64  `json:"size"`        // compressed bytes
	SHA256      string `json:"sha256"`      // of the compressed bytes
	DiskSize    int64  `json:"disk_size"`   // uncompressed bytes
}

// InstallRegion is one hashed range of the uncompressed image.
type InstallRegion struct {
	Name   string `json:"name"` // "gpt", a partition name, "tail"
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Zero says the range is all zeros (its SHA256 is that of Size zero bytes): the installer
	// checks it reads back as zeros, which is much cheaper than hashing it. Most of a fresh disk
	// is zeros (slot B, the data partition's free space).
	Zero bool `json:"zero,omitempty"`
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ParseInstallManifest reads and checks install.json: hashes well formed, regions contiguous
// and covering the disk.
func ParseInstallManifest(b []byte) (*InstallManifest, error) {
	var m InstallManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", InstallManifestFile, err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", InstallManifestFile, err)
	}
	return &m, nil
}

// Validate checks what ParseInstallManifest checks.
func (m *InstallManifest) Validate() error {
	switch {
	case m.Image.File == "" || m.Image.Compression != "zstd":
		return fmt.Errorf("image: file %q compression %q: want a zstd file", m.Image.File, m.Image.Compression)
	case !sha256RE.MatchString(m.Image.SHA256):
		return fmt.Errorf("image: sha256 %q is not a hex sha256", m.Image.SHA256)
	case m.Image.Size <= 0 || m.Image.DiskSize <= 0 || m.Image.DiskSize%512 != 0:
		return fmt.Errorf("image: size %d, disk size %d: want positive sizes, the disk's a multiple of 512", m.Image.Size, m.Image.DiskSize)
	case len(m.Regions) == 0:
		return fmt.Errorf("no regions")
	}
	var off int64
	for i, r := range m.Regions {
		switch {
		case r.Offset != off:
			return fmt.Errorf("region %d (%s): offset %d, want %d (regions are contiguous)", i, r.Name, r.Offset, off)
		case r.Size <= 0:
			return fmt.Errorf("region %d (%s): size %d", i, r.Name, r.Size)
		case !sha256RE.MatchString(r.SHA256):
			return fmt.Errorf("region %d (%s): sha256 %q is not a hex sha256", i, r.Name, r.SHA256)
		}
		off += r.Size
	}
	if off != m.Image.DiskSize {
		return fmt.Errorf("regions end at %d, the disk at %d", off, m.Image.DiskSize)
	}
	return nil
}

// User data sources, as image.json's userdata_sources and the variant's [userdata] sources name
// them. The apiserver reads them in the order given (later ones win key by key); without a list
// it reads UserDataSources(): nocloud, ovf, imds (on EC2 only) and cmdline.
const (
	UserDataNoCloud = "nocloud" // a FAT or ISO9660 volume labelled cidata, the installer's seed included
	UserDataIMDS    = "imds"    // EC2's instance metadata service (IMDSv2)
	UserDataOVF     = "ovf"     // VMware's OVF environment: ovf-env.xml on a CD-ROM, its base64 user-data vApp property
	UserDataCmdline = "cmdline" // ballast.userdata= on the kernel command line
)

// UserDataSources lists every source name, in the default order.
func UserDataSources() []string {
	return []string{UserDataNoCloud, UserDataOVF, UserDataIMDS, UserDataCmdline}
}

// DefaultUserDataSources describes the default list for documentation: imds counts only on EC2.
func DefaultUserDataSources() string {
	var out []string
	for _, s := range UserDataSources() {
		if s == UserDataIMDS {
			s += " (on EC2 only)"
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}
