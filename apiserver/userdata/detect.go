package userdata

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Filesystem types as mount(2) names them.
const (
	FSVFAT    = "vfat"
	FSISO9660 = "iso9660"
)

// ErrNoFilesystem means a device holds neither a FAT nor an ISO9660 filesystem.
var ErrNoFilesystem = errors.New("no FAT or ISO9660 filesystem")

// Volume is what Detect found on a device.
type Volume struct {
	FSType string
	// Labels are the volume labels the filesystem records, spaces trimmed. FAT keeps one in the
	// boot sector and one in the root directory, and tools that relabel a volume may change only
	// one of them, so both are reported.
	Labels []string
}

// HasLabel reports whether the volume carries label, compared case-insensitively: FAT labels are
// upper-cased by mkfs and Windows, while cloud images write "cidata" in either case.
func (v Volume) HasLabel(label string) bool {
	for _, l := range v.Labels {
		if strings.EqualFold(l, label) {
			return true
		}
	}
	return false
}

// Detect reads the start of a device or image and reports its filesystem and labels.
func Detect(r io.ReaderAt) (Volume, error) {
	if v, ok, err := detectISO9660(r); ok || err != nil {
		return v, err
	}
	return detectFAT(r)
}

// ISO9660 (ECMA-119): system area of 16 sectors of 2048 bytes, then volume descriptors. The
// primary volume descriptor has type 1, "CD001", version 1, and the volume identifier at 40..71.
const (
	isoPVDOffset = 16 * 2048
	isoVolIDOff  = 40
	isoVolIDLen  = 32
)

func detectISO9660(r io.ReaderAt) (Volume, bool, error) {
	var pvd [isoVolIDOff + isoVolIDLen]byte
	if err := readFull(r, pvd[:], isoPVDOffset); err != nil {
		// A device smaller than the system area holds no ISO9660, but may hold FAT.
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return Volume{}, false, nil
		}
		return Volume{}, false, err
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" || pvd[6] != 1 {
		return Volume{}, false, nil
	}
	return Volume{FSType: FSISO9660, Labels: nonEmpty(trimLabel(pvd[isoVolIDOff:]))}, true, nil
}

// ISO9660 directory records (ECMA-119 9.1), as far as finding a name in the root directory needs
// them: the PVD's logical block size (a both-endian 16-bit number, little-endian half first) and
// its root directory record, whose extent and length are both-endian 32-bit numbers.
const (
	isoBlockSizeOff = 128
	isoRootRecOff   = 156
	isoRecExtent    = 2
	isoRecLength    = 10
	isoRecFlags     = 25
	isoRecNameLen   = 32
	isoRecName      = 33
	isoFlagDir      = 0x02
	// maxISORootScan bounds how much of a root directory is read: a seed volume's holds a few
	// entries, and the device may be anything that merely looks like ISO9660.
	maxISORootScan = 64 << 10
)

// isoRootFiles returns the names of the files (not directories) in the root directory of the
// ISO9660 volume on r, as its primary volume descriptor records them: d-characters, usually
// upper case and with a ";1" version, whatever Rock Ridge or Joliet names the files also have.
func isoRootFiles(r io.ReaderAt) ([]string, error) {
	pvd := make([]byte, isoRootRecOff+34)
	if err := readFull(r, pvd, isoPVDOffset); err != nil {
		return nil, fmt.Errorf("iso9660 primary volume descriptor: %w", err)
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return nil, ErrNoFilesystem
	}
	le32 := binary.LittleEndian.Uint32
	block := int64(binary.LittleEndian.Uint16(pvd[isoBlockSizeOff:]))
	if block != 512 && block != 1024 && block != 2048 {
		return nil, fmt.Errorf("iso9660 logical block size %d", block)
	}
	root := pvd[isoRootRecOff:]
	off := int64(le32(root[isoRecExtent:])) * block
	size := min(int64(le32(root[isoRecLength:])), maxISORootScan)
	dir := make([]byte, size)
	if err := readFull(r, dir, off); err != nil {
		return nil, fmt.Errorf("iso9660 root directory at offset %d: %w", off, err)
	}
	var names []string
	for i := 0; i < len(dir); {
		n := int(dir[i])
		if n == 0 { // records do not cross a block: the rest of this one is padding
			i = int((int64(i)/block + 1) * block)
			continue
		}
		if n < isoRecName || i+n > len(dir) {
			return nil, fmt.Errorf("iso9660 root directory: bad record of %d bytes at %d", n, i)
		}
		rec := dir[i : i+n]
		nameLen := int(rec[isoRecNameLen])
		if isoRecName+nameLen > n {
			return nil, fmt.Errorf("iso9660 root directory: name of %d bytes overruns its record at %d", nameLen, i)
		}
		// The directory itself and its parent (names 0x00 and 0x01) are directories too.
		if rec[isoRecFlags]&isoFlagDir == 0 && nameLen > 0 {
			names = append(names, string(rec[isoRecName:isoRecName+nameLen]))
		}
		i += n
	}
	return names, nil
}

// FAT boot sector (BIOS parameter block) fields, little-endian.
const (
	bpbBytesPerSector = 0x0B // 2 bytes
	bpbSecPerCluster  = 0x0D // 1
	bpbReserved       = 0x0E // 2
	bpbNumFATs        = 0x10 // 1
	bpbRootEntries    = 0x11 // 2, 0 on FAT32
	bpbFATSize16      = 0x16 // 2, 0 on FAT32
	bpbFATSize32      = 0x24 // 4
	bpbRootCluster32  = 0x2C // 4
	bpbExtSig16       = 0x26 // 0x29 when the label below is valid
	bpbLabel16        = 0x2B // 11 bytes
	bpbExtSig32       = 0x42
	bpbLabel32        = 0x47
	labelLen          = 11
	dirEntryLen       = 32
	attrVolumeID      = 0x08
	attrLongName      = 0x0F
	// maxRootScan bounds how much of the root directory is searched for the label entry, which
	// mkfs writes first anyway.
	maxRootScan = 64 << 10
)

func detectFAT(r io.ReaderAt) (Volume, error) {
	var bs [512]byte
	if err := readFull(r, bs[:], 0); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return Volume{}, ErrNoFilesystem
		}
		return Volume{}, err
	}
	le16 := func(off int) int { return int(binary.LittleEndian.Uint16(bs[off:])) }
	le32 := func(off int) int64 { return int64(binary.LittleEndian.Uint32(bs[off:])) }

	bps, spc := le16(bpbBytesPerSector), int(bs[bpbSecPerCluster])
	reserved, nfats := le16(bpbReserved), int(bs[bpbNumFATs])
	// Sanity checks that tell a FAT boot sector from arbitrary data (an MBR, ext4, zeroes).
	if bs[0] != 0xEB && bs[0] != 0xE9 ||
		bps != 512 && bps != 1024 && bps != 2048 && bps != 4096 ||
		spc == 0 || spc&(spc-1) != 0 || reserved == 0 || nfats == 0 {
		return Volume{}, ErrNoFilesystem
	}

	v := Volume{FSType: FSVFAT}
	fatSize := int64(le16(bpbFATSize16))
	var rootOff, rootLen int64
	if fatSize != 0 { // FAT12/16: a fixed root directory right after the FATs
		if bs[bpbExtSig16] == 0x29 {
			v.Labels = nonEmpty(trimLabel(bs[bpbLabel16 : bpbLabel16+labelLen]))
		}
		rootOff = (int64(reserved) + int64(nfats)*fatSize) * int64(bps)
		rootLen = int64(le16(bpbRootEntries)) * dirEntryLen
	} else { // FAT32: the root directory is a cluster chain; its first cluster is enough
		if bs[bpbExtSig32] == 0x29 {
			v.Labels = nonEmpty(trimLabel(bs[bpbLabel32 : bpbLabel32+labelLen]))
		}
		fatSize = le32(bpbFATSize32)
		rootCluster := le32(bpbRootCluster32)
		if fatSize == 0 || rootCluster < 2 {
			return Volume{}, ErrNoFilesystem
		}
		dataStart := int64(reserved) + int64(nfats)*fatSize
		rootOff = (dataStart + (rootCluster-2)*int64(spc)) * int64(bps)
		rootLen = int64(spc) * int64(bps)
	}
	label, err := rootDirLabel(r, rootOff, min(rootLen, maxRootScan))
	if err != nil {
		return Volume{}, fmt.Errorf("fat root directory: %w", err)
	}
	if label != "" && !v.HasLabel(label) {
		v.Labels = append(v.Labels, label)
	}
	return v, nil
}

// rootDirLabel returns the name of the volume-label entry in a FAT root directory, if any.
func rootDirLabel(r io.ReaderAt, off, n int64) (string, error) {
	buf := make([]byte, n-n%dirEntryLen)
	if err := readFull(r, buf, off); err != nil {
		return "", err
	}
	for e := buf; len(e) >= dirEntryLen; e = e[dirEntryLen:] {
		switch e[0] {
		case 0x00: // end of directory
			return "", nil
		case 0xE5: // deleted entry
			continue
		}
		attr := e[11]
		if attr&attrLongName == attrLongName || attr&attrVolumeID == 0 {
			continue
		}
		return trimLabel(e[:labelLen]), nil
	}
	return "", nil
}

func readFull(r io.ReaderAt, buf []byte, off int64) error {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// trimLabel removes the space (and NUL) padding FAT and ISO9660 put after a label.
func trimLabel(b []byte) string {
	return string(bytes.TrimRight(b, " \x00"))
}

func nonEmpty(s string) []string {
	if s == "" || s == "NO NAME" { // mkfs.fat's placeholder for "no label"
		return nil
	}
	return []string{s}
}
