// Package iso writes and reads ISO9660 volumes: Ballast's installer ISO (optionally bootable by
// UEFI both as a CD, through El Torito, and as a disk, through a GPT in the system area) and the
// tiny NoCloud seed volumes labelled "cidata".
//
// Write stores Rock Ridge names (SUSP SP/ER, RRIP NM and PX) so that Linux's isofs shows the
// exact, case-preserved names the host and the installer open ("user-data", "install.json"),
// and plain ISO9660 level 2 identifiers (upper-case d-characters with ";1") for readers that
// ignore Rock Ridge. Every timestamp comes from Options.Time and every layout decision from the
// input, so the same input gives the same bytes.
//
// It is written here rather than taken from a library because the output must be byte-for-byte
// reproducible, carry the hybrid GPT the same way the disk images do (images/gpt), and the reader
// has to be small enough for the installer's initramfs (standard library only).
package iso

import (
	"encoding/binary"
	"io"
	"time"
)

// File is one file to store. Directories are implied by the paths.
type File struct {
	Path   string    // slash-separated, relative to the root, e.g. "install.json", "EFI/x"
	Data   []byte    // content, when Reader is nil
	Reader io.Reader // streams exactly Size bytes instead
	Size   int64
}

// Options are the volume-wide settings.
type Options struct {
	// VolumeID is the PVD volume identifier, e.g. "BALLAST_INSTALL" or "cidata", stored as given
	// (printable ASCII, at most 32 bytes): NoCloud and the installer match on it.
	VolumeID string
	// Time is every timestamp of the volume, stored in UTC; it must lie in 1900..2155, the range
	// a directory record can hold.
	Time time.Time
	// EFIBoot, when non-nil, is a FAT image (the caller makes it, a multiple of 512 bytes) that
	// becomes the El Torito EFI boot image (platform 0xEF, no emulation) AND, for a disk-style
	// boot (USB stick, a virtual disk), an EFI System Partition in a GPT written into the ISO's
	// system area (protective MBR + primary GPT in the first 32 KiB, backup GPT at the image's
	// end). The image is stored once, without a directory entry; the boot catalog and the
	// partition both point at those bytes.
	EFIBoot []byte
	// DiskGUID is the GPT disk GUID in textual byte order (as contract.UUID holds it); zero means
	// derive it from the volume's content, as the ESP's partition GUID always is.
	DiskGUID [16]byte
}

const (
	blockSize = 2048
	// systemAreaBlocks is the ISO9660 system area before the volume descriptors.
	systemAreaBlocks = 16
	// maxFileSize is what one extent's 32-bit length can hold.
	maxFileSize = 1<<32 - 1
	// maxRecordLen is the largest directory record (its length is one byte).
	maxRecordLen = 255
	// dirRecordFixed is the size of a directory record before its identifier.
	dirRecordFixed = 33
)

// Volume descriptor types (ECMA-119 8.1.1).
const (
	vdBootRecord = 0
	vdPrimary    = 1
	vdTerminator = 255
)

// Directory record file flags (ECMA-119 9.1.6).
const (
	flagDirectory   = 0x02
	flagMultiExtent = 0x80
)

const standardID = "CD001"

// ISO9660 stores most numbers twice, little-endian then big-endian ("both-byte orders").
func putBoth32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], v)
}

func putBoth16(b []byte, v uint16) {
	binary.LittleEndian.PutUint16(b, v)
	binary.BigEndian.PutUint16(b[2:], v)
}

// blocksFor is how many 2048-byte blocks n bytes take.
func blocksFor(n int64) int64 { return (n + blockSize - 1) / blockSize }
