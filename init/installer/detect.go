package installer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// probeSize is how much of each end of a disk the installer reads to call it empty or to name
// what it holds: every signature it knows lies in the first MiB, the backup GPT in the last.
const probeSize = 1 << 20

// Finding is what holds data on a disk: a signature, or the first non-zero byte.
type Finding struct {
	What   string // "GPT partition table", "ext4 file system", ..., or "non-zero bytes"
	Offset int64  // where the signature (or the first non-zero byte) is, in bytes from the disk's start
	Label  string // the volume label, for file systems that keep one where Probe looks
}

func (f Finding) String() string {
	s := fmt.Sprintf("%s at offset %d", f.What, f.Offset)
	if f.Label != "" {
		s += fmt.Sprintf(" (label %q)", f.Label)
	}
	return s
}

// signature is a magic string at a fixed offset.
type signature struct {
	what   string
	offset int64
	magic  string
}

// Signatures checked in the first MiB, most specific first: a FAT boot sector and an MBR share
// the 0x55AA mark, an ISO9660 volume may sit behind a hybrid GPT, LUKS and XFS start at 0.
var signatures = []signature{
	{"LUKS header", 0, "LUKS\xba\xbe"},
	{"LUKS2 secondary header", 0x4000, "SKUL\xba\xbe"},
	{"XFS file system", 0, "XFSB"},
	{"GPT partition table", 512, "EFI PART"},
	{"GPT partition table (4096-byte sectors)", 4096, "EFI PART"},
	{"ext2/3/4 file system", 1024 + 0x38, "\x53\xef"},
	{"btrfs file system", 0x10000 + 0x40, "_BHRfS_M"},
	{"ISO9660 file system", 0x8001, "CD001"},
	{"swap space", 4096 - 10, "SWAPSPACE2"},
	{"swap space", 4096 - 10, "SWAP-SPACE"},
}

// Probe names what the start of a disk holds, given its first bytes (up to probeSize) and its
// last ones; ok is false when both are all zeros, the only state the installer calls empty.
// tailOffset is where tail starts on the disk.
func Probe(head, tail []byte, tailOffset int64) (found []Finding, ok bool) {
	for _, s := range signatures {
		end := s.offset + int64(len(s.magic))
		if end > int64(len(head)) || string(head[s.offset:end]) != s.magic {
			continue
		}
		f := Finding{What: s.what, Offset: s.offset}
		if s.what == "ISO9660 file system" {
			f.Label = isoVolumeID(head)
		}
		if s.what == "ext2/3/4 file system" {
			f.Label = cString(head[1024+0x78 : 1024+0x88])
		}
		found = append(found, f)
	}
	if fat, label := fatBootSector(head); fat != "" {
		found = append(found, Finding{What: fat, Offset: 0, Label: label})
	} else if mbr := mbrPartitions(head); mbr != "" {
		found = append(found, Finding{What: mbr, Offset: 446})
	}
	if len(found) > 0 {
		return found, true
	}
	if i := bytes.IndexFunc(head, nonZero); i >= 0 {
		return []Finding{{What: "non-zero bytes", Offset: int64(i)}}, true
	}
	if i := bytes.IndexFunc(tail, nonZero); i >= 0 {
		// A backup GPT header in the last sector is what remains of a table whose primary copy
		// was wiped; the kernel and firmware still find it.
		if n := len(tail); n >= 512 && string(tail[n-512:n-504]) == "EFI PART" {
			return []Finding{{What: "backup GPT header", Offset: tailOffset + int64(n-512)}}, true
		}
		return []Finding{{What: "non-zero bytes", Offset: tailOffset + int64(i)}}, true
	}
	return nil, false
}

func nonZero(r rune) bool { return r != 0 }

// isoVolumeID returns the volume identifier of an ISO9660 primary volume descriptor (sector 16 of
// 2048 bytes: type 1, "CD001", version 1, identifier at 40..71), or "" when there is none.
func isoVolumeID(head []byte) string {
	const pvd = 16 * 2048
	if len(head) < pvd+72 {
		return ""
	}
	d := head[pvd : pvd+72]
	if d[0] != 1 || string(d[1:6]) != "CD001" || d[6] != 1 {
		return ""
	}
	return strings.TrimRight(string(d[40:72]), " \x00")
}

// fatBootSector recognises a FAT boot sector by its BIOS parameter block, which an MBR does not
// have, and returns the file system's name and the boot sector's volume label.
func fatBootSector(b []byte) (what, label string) {
	if len(b) < 512 || b[510] != 0x55 || b[511] != 0xaa || (b[0] != 0xeb && b[0] != 0xe9) {
		return "", ""
	}
	bps := binary.LittleEndian.Uint16(b[0x0b:])
	spc := b[0x0d]
	reserved := binary.LittleEndian.Uint16(b[0x0e:])
	if bps != 512 && bps != 1024 && bps != 2048 && bps != 4096 || spc == 0 || spc&(spc-1) != 0 || reserved == 0 || b[0x10] == 0 {
		return "", ""
	}
	if binary.LittleEndian.Uint16(b[0x16:]) == 0 { // FAT32: the FAT size lives in the extended BPB
		if b[0x42] == 0x29 {
			label = fatLabel(b[0x47 : 0x47+11])
		}
		return "FAT32 file system", label
	}
	if b[0x26] == 0x29 {
		label = fatLabel(b[0x2b : 0x2b+11])
	}
	return "FAT12/16 file system", label
}

func fatLabel(b []byte) string {
	l := strings.TrimRight(string(b), " \x00")
	if l == "NO NAME" { // mkfs.fat's "no label"
		return ""
	}
	return l
}

// mbrPartitions says whether sector 0 is an MBR with at least one partition entry in use.
func mbrPartitions(b []byte) string {
	if len(b) < 512 || b[510] != 0x55 || b[511] != 0xaa {
		return ""
	}
	n := 0
	for i := 0; i < 4; i++ {
		if b[446+16*i+4] != 0 {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("MBR partition table (%d entries)", n)
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// readEnds reads the first and last probeSize bytes of a disk of size bytes (overlapping on a
// small disk).
func readEnds(r io.ReaderAt, size int64) (head, tail []byte, tailOffset int64, err error) {
	n := min(size, probeSize)
	head = make([]byte, n)
	if err := readAtFull(r, head, 0); err != nil {
		return nil, nil, 0, fmt.Errorf("read the first %d bytes: %w", n, err)
	}
	tailOffset = size - n
	tail = make([]byte, n)
	if err := readAtFull(r, tail, tailOffset); err != nil {
		return nil, nil, 0, fmt.Errorf("read the last %d bytes at offset %d: %w", n, tailOffset, err)
	}
	return head, tail, tailOffset, nil
}

// readAtFull is ReadAt that accepts io.EOF with a full buffer, as ReaderAt allows at the end.
func readAtFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}
