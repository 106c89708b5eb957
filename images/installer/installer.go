// Package installer makes the installer's artifacts from a built disk: install.json and the
// compressed image it describes, the hybrid installer ISO (El Torito and GPT, so it boots from a
// CD-ROM or written to a USB stick), and the network boot directory. The installer itself runs in
// the initramfs (init/installer); this package only packs what it reads.
package installer

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/fat"
	"github.com/ballast-os/ballast/images/iso"

	"github.com/klauspost/compress/zstd"
)

// Region is a named range of the disk image that install.json hashes: usually one per
// partition, between the GPT area before them and the tail after them.
type Region struct {
	Name         string
	Offset, Size int64
}

// Regions splits a disk of size bytes into the GPT area, the partitions (in disk order, which
// need not be the order given) and the tail, with no gaps: space between partitions belongs to
// the region before it.
func Regions(size int64, parts []Region) ([]Region, error) {
	ps := append([]Region(nil), parts...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].Offset < ps[j].Offset })
	var out []Region
	off := int64(0)
	add := func(name string, end int64) {
		if end > off {
			out = append(out, Region{Name: name, Offset: off, Size: end - off})
			off = end
		}
	}
	for i, p := range ps {
		if p.Offset < off || p.Size <= 0 || p.Offset+p.Size > size {
			return nil, fmt.Errorf("installer: partition %s at %d+%d overlaps or leaves the %d-byte disk", p.Name, p.Offset, p.Size, size)
		}
		if i == 0 {
			add("gpt", p.Offset)
		} else if p.Offset > off {
			// A gap after a partition is hashed with it.
			out[len(out)-1].Size += p.Offset - off
			off = p.Offset
		}
		add(p.Name, p.Offset+p.Size)
	}
	add("tail", size)
	if len(out) == 0 {
		return nil, fmt.Errorf("installer: empty disk")
	}
	return out, nil
}

// ImageOptions describe the disk that Compress packs.
type ImageOptions struct {
	Variant, Version string
	// Arch is the disk's architecture; install.json names it as uname -m does ("x86_64"), the
	// spelling manifests have always had.
	Arch       contract.Arch
	Partitions []Region
}

// Compress writes the disk image at diskPath, zstd-compressed, to out, and returns the
// manifest that describes it: the compressed file's size and hash, and a hash per region of
// the uncompressed disk. The encoder settings are fixed, so the same disk always gives the same
// bytes.
func Compress(diskPath, out string, opts ImageOptions) (*contract.InstallManifest, error) {
	arch, err := contract.ParseArch(string(opts.Arch))
	if err != nil {
		return nil, fmt.Errorf("installer: %w", err)
	}
	in, err := os.Open(diskPath)
	if err != nil {
		return nil, fmt.Errorf("installer: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, fmt.Errorf("installer: %w", err)
	}
	regions, err := Regions(st.Size(), opts.Partitions)
	if err != nil {
		return nil, err
	}
	f, err := os.Create(out)
	if err != nil {
		return nil, fmt.Errorf("installer: %w", err)
	}
	defer f.Close()
	whole := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, whole), 1<<20)
	enc, err := zstd.NewWriter(bw, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, fmt.Errorf("installer: zstd: %w", err)
	}
	m := &contract.InstallManifest{Variant: opts.Variant, Version: opts.Version, Arch: arch.Info().Machine}
	buf := make([]byte, zeroBlock)
	for _, r := range regions {
		// Each region is split into runs of whole zero blocks and the rest: the installer reads
		// a zero run back with a cheap check instead of hashing it.
		var run *contract.InstallRegion
		var h hash.Hash
		flush := func() {
			if run != nil {
				if run.Zero {
					run.SHA256 = zeroSHA256(run.Size)
				} else {
					run.SHA256 = hex.EncodeToString(h.Sum(nil))
				}
				m.Regions = append(m.Regions, *run)
				run = nil
			}
		}
		for off := r.Offset; off < r.Offset+r.Size; {
			b := buf[:min(int64(len(buf)), r.Offset+r.Size-off)]
			if _, err := in.ReadAt(b, off); err != nil {
				return nil, fmt.Errorf("installer: %s: region %s at %d: %w", diskPath, r.Name, off, err)
			}
			if _, err := enc.Write(b); err != nil {
				return nil, fmt.Errorf("installer: zstd: %w", err)
			}
			zero := len(b) == zeroBlock && allZero(b)
			if run != nil && run.Zero != zero {
				flush()
			}
			if run == nil {
				run = &contract.InstallRegion{Name: r.Name, Offset: off, Zero: zero}
				h = sha256.New()
			}
			run.Size += int64(len(b))
			if !zero {
				h.Write(b)
			}
			off += int64(len(b))
		}
		flush()
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("installer: zstd: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("installer: %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("installer: %s: %w", out, err)
	}
	cst, err := os.Stat(out)
	if err != nil {
		return nil, fmt.Errorf("installer: %w", err)
	}
	m.Image = contract.InstallImage{File: contract.InstallImageFile, Compression: "zstd", Size: cst.Size(),
		SHA256: hex.EncodeToString(whole.Sum(nil)), DiskSize: st.Size()}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("installer: %w", err)
	}
	return m, nil
}

// zeroBlock is the granularity of zero runs: 1 MiB, the partitions' alignment.
const zeroBlock = 1 << 20

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// zeroSHA256 is the sha256 of n zero bytes (n a multiple of zeroBlock).
func zeroSHA256(n int64) string {
	h := sha256.New()
	z := make([]byte, zeroBlock)
	for ; n > 0; n -= zeroBlock {
		h.Write(z)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// MarshalManifest is install.json's bytes.
func MarshalManifest(m *contract.InstallManifest) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("installer: %w", err)
	}
	return append(b, '\n'), nil
}

// Boot is what the installer's EFI system partition holds: systemd-boot, its loader.conf, the
// installer UKI, and for a signed build the owner's key files to enroll (name → content).
type Boot struct {
	Loader     []byte
	LoaderConf string
	UKI        []byte
	Enroll     map[string][]byte
}

// minESP is the smallest FAT32 volume the fat package writes (65525 clusters of 512 bytes),
// rounded up to whole MiB.
const minESP = 33 << 20

// ESP builds the FAT image of the installer's EFI system partition for arch, whose firmware
// starts systemd-boot from the architecture's removable-media path: sized to its files with
// room for FAT overhead, never below what FAT32 needs.
func ESP(arch contract.Arch, b Boot, t time.Time, volumeID uint32) ([]byte, error) {
	arch, err := contract.ParseArch(string(arch))
	if err != nil {
		return nil, fmt.Errorf("installer: esp: %w", err)
	}
	files := []fat.File{
		{Path: arch.ESPLoaderPath(), Data: b.Loader},
		{Path: contract.ESPLoaderConf, Data: []byte(b.LoaderConf)},
		{Path: contract.ESPEntries + "/" + contract.InstallerUKIFile, Data: b.UKI},
	}
	names := make([]string, 0, len(b.Enroll))
	for n := range b.Enroll {
		names = append(names, n)
	}
	sort.Strings(names)
	var content int64
	for _, n := range names {
		files = append(files, fat.File{Path: contract.ESPKeysDir + "/" + n, Data: b.Enroll[n]})
	}
	for _, f := range files {
		content += int64(len(f.Data))
	}
	// 4 KiB clusters waste at most one per file; FATs, directories and slack fit in 4 MiB.
	size := (content + int64(len(files))*4096 + 4<<20 + 1<<20 - 1) &^ (1<<20 - 1)
	size = max(size, minESP)
	img := make([]byte, size)
	if err := fat.Write(&sliceWriter{img}, size, fat.Options{Label: "BALLASTINST", VolumeID: volumeID, Time: t}, files); err != nil {
		return nil, fmt.Errorf("installer: esp: %w", err)
	}
	return img, nil
}

type sliceWriter struct{ b []byte }

func (s *sliceWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(s.b)) {
		return 0, fmt.Errorf("write of %d bytes at %d outside %d", len(p), off, len(s.b))
	}
	return copy(s.b[off:], p), nil
}

// ISOOptions say what goes on an installer ISO besides the boot files.
type ISOOptions struct {
	Time time.Time
	// UserData, when not nil, is put on the ISO as contract.InstallUserDataFile: user data for
	// every host the ISO installs.
	UserData []byte
}

// WriteISO writes the hybrid installer ISO to out: the ESP image as its El Torito EFI image and
// GPT partition, and install.json, the compressed image (imagePath) and the user data as files.
func WriteISO(out string, esp, manifest []byte, imagePath string, opts ISOOptions) (err error) {
	if _, err := contract.ParseInstallManifest(manifest); err != nil {
		return fmt.Errorf("installer: %w", err)
	}
	img, err := os.Open(imagePath)
	if err != nil {
		return fmt.Errorf("installer: %w", err)
	}
	defer img.Close()
	st, err := img.Stat()
	if err != nil {
		return fmt.Errorf("installer: %w", err)
	}
	files := []iso.File{
		{Path: contract.InstallManifestFile, Data: manifest},
		{Path: contract.InstallImageFile, Reader: img, Size: st.Size()},
	}
	if opts.UserData != nil {
		files = append(files, iso.File{Path: contract.InstallUserDataFile, Data: opts.UserData})
	}
	sum := sha256.Sum256(manifest)
	var guid [16]byte
	copy(guid[:], sum[:16])
	guid[6] = guid[6]&0x0f | 0x40
	guid[8] = guid[8]&0x3f | 0x80
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("installer: %w", err)
	}
	defer func() {
		f.Close()
		if err != nil {
			os.Remove(tmp)
		}
	}()
	size, err := iso.Write(f, iso.Options{VolumeID: contract.InstallVolumeID, Time: opts.Time, EFIBoot: esp, DiskGUID: guid}, files)
	if err != nil {
		return fmt.Errorf("installer: %s: %w", out, err)
	}
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("installer: %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("installer: %s: %w", out, err)
	}
	return os.Rename(tmp, out)
}

// IPXEScript is boot.ipxe for the network boot directory: it chains the installer UKI with its
// command line and the URL of install.json beside it. iPXE passes the words as the image's load
// options, which systemd-stub uses instead of the UKI's own only when Secure Boot is off; under
// Secure Boot the UKI's signed line must name the source (ballast build --netboot-url).
func IPXEScript(cmdline string) string {
	var b strings.Builder
	b.WriteString("#!ipxe\n")
	b.WriteString("# Ballast network installer. Serve this directory over HTTP; set base-url to its URL when\n")
	b.WriteString("# iPXE cannot tell (e.g. when this script is embedded).\n")
	b.WriteString("isset ${base-url} || set base-url ${cwduri}\n")
	fmt.Fprintf(&b, "chain ${base-url}/%s %s %s=${base-url}/%s\n", contract.InstallerUKIFile, cmdline,
		contract.ParamInstallSource, contract.InstallManifestFile)
	return b.String()
}

// VolumeID derives a FAT volume serial number from a name, for reproducible images.
func VolumeID(name string) uint32 {
	s := sha256.Sum256([]byte(name))
	return binary.BigEndian.Uint32(s[:4])
}

// Copy copies a file, for the network boot directory.
func Copy(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("installer: %w", err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("installer: %w", err)
	}
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("installer: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("installer: %s: %w", dst, err)
	}
	return out.Close()
}
