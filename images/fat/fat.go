// Package fat writes FAT32 file systems, such as the EFI system partition,
// from a list of files, without mounting anything and byte-for-byte
// reproducibly.
//
// The volume has 512-byte sectors, 32 reserved sectors (boot sector, FSInfo,
// backup boot sector and FSInfo at 6 and 7), two FATs and the root directory at
// cluster 2. Directories and files are stored contiguously in a fixed order,
// names get an upper-case 8.3 short name and, where that does not spell the
// name exactly, VFAT long-name entries.
//
// It is written here rather than taken from go-diskfs's fat32 package because the volumes that
// package writes fail `fsck.fat -n` (measured with v1.9.4 on a 64 MiB volume: "Filesystem has
// 129024 clusters but only space for 129022 FAT entries") and differ from build to build (a random
// volume ID), while the ESP must pass fsck.fat, which the tests
// run on every image, and be byte-for-byte reproducible.
package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Options are the volume-wide settings.
type Options struct {
	// Label is the volume label: up to 11 characters of an 8.3 name's
	// alphabet or spaces, stored upper case. Empty means no label ("NO NAME").
	Label string
	// VolumeID is the volume serial number (the FAT "UUID", e.g. 1234-ABCD).
	VolumeID uint32
	// Time stamps every entry that has no ModTime of its own. Its fields are
	// stored as given (FAT has no time zone), so pass UTC for reproducible
	// output. Dates outside 1980..2107 are clamped to the nearest one FAT can hold.
	Time time.Time
	// ClusterSize in bytes, a power of two from 512 to 32768. Zero picks the
	// largest up to 4 KiB that still gives a FAT32 cluster count.
	ClusterSize int
	// HiddenSectors is the number of sectors before the volume on its disk
	// (the partition's start LBA), recorded in the boot sector for the few
	// readers that use it.
	HiddenSectors uint32
}

// File is one file, or with Dir an (empty) directory, to put on the volume.
// Directories that paths imply are created anyway.
type File struct {
	// Path is slash separated and relative to the root, e.g. "EFI/BOOT/BOOTX64.EFI".
	Path string
	// Data is the content, used when Reader is nil.
	Data []byte
	// Reader streams the content instead; exactly Size bytes are read.
	Reader io.Reader
	// Size is the content length when Reader is set.
	Size int64
	// ModTime overrides Options.Time for this entry.
	ModTime time.Time
	// Dir makes the path a directory rather than a file.
	Dir bool
}

const (
	dirEntrySize   = 32
	maxDirEntries  = 65536 // a directory's entries are indexed by 16 bits
	maxFileSize    = 0xFFFFFFFF
	attrVolumeID   = 0x08
	attrDirectory  = 0x10
	attrArchive    = 0x20
	attrLongName   = 0x0F
	mediaFixed     = 0xF8
	endOfChain     = 0x0FFFFFFF
	lastLongEntry  = 0x40
	bootSignature  = 0xAA55
	fsInfoLead     = 0x41615252
	fsInfoStruct   = 0x61417272
	fsInfoTrail    = 0xAA550000
	fsInfoUnknown  = 0xFFFFFFFF
	extBootSig     = 0x29
	biosDriveFixed = 0x80
)

// Write builds a FAT32 volume of size bytes holding files and writes it to w
// at offsets 0 .. size-1. Every byte of metadata is written; free clusters are
// not, so w should start out zeroed (a new or sparse file) for the output to
// be the same on every run.
func Write(w io.WriterAt, size int64, opts Options, files []File) error {
	g, err := planGeometry(size, opts.ClusterSize)
	if err != nil {
		return fmt.Errorf("fat: %w", err)
	}
	label, err := volumeLabel(opts.Label)
	if err != nil {
		return fmt.Errorf("fat: %w", err)
	}
	root, err := buildTree(files, opts.Time)
	if err != nil {
		return fmt.Errorf("fat: %w", err)
	}
	if err := allocate(root, g, opts.Label != ""); err != nil {
		return fmt.Errorf("fat: %w", err)
	}
	vol := volume{w: w, g: g, label: label, hasLabel: opts.Label != "", opts: opts, root: root}
	if err := vol.write(size); err != nil {
		return fmt.Errorf("fat: %w", err)
	}
	return nil
}

// contentSize validates a file's content source and returns its length.
func contentSize(f *File) (int64, error) {
	switch {
	case f.Reader != nil && f.Data != nil:
		return 0, fmt.Errorf("file %q: both Data and Reader are set", f.Path)
	case f.Reader != nil && f.Size < 0:
		return 0, fmt.Errorf("file %q: negative size %d", f.Path, f.Size)
	case f.Reader != nil:
		if f.Size > maxFileSize {
			return 0, fmt.Errorf("file %q: %d bytes exceeds the FAT limit of %d", f.Path, f.Size, int64(maxFileSize))
		}
		return f.Size, nil
	default:
		if int64(len(f.Data)) > maxFileSize {
			return 0, fmt.Errorf("file %q: %d bytes exceeds the FAT limit of %d", f.Path, len(f.Data), int64(maxFileSize))
		}
		return int64(len(f.Data)), nil
	}
}

// dirEntryCount is the number of 32-byte entries directory d holds.
func dirEntryCount(d *node, isRoot, hasLabel bool) int {
	n := 2 // "." and ".."
	if isRoot {
		n = 0
		if hasLabel {
			n = 1
		}
	}
	for _, c := range d.children {
		n++
		if c.longName {
			n += longNameEntries(c.name)
		}
	}
	return n
}

// allocate assigns clusters: the root directory first (at cluster 2), then the
// other directories, then the files, each in pre-order and contiguous.
func allocate(root *node, g geometry, hasLabel bool) error {
	cb := uint64(g.clusterBytes())
	next := uint64(rootCluster)
	place := func(n *node, bytes uint64) {
		n.clusters = uint32(ceilDiv(bytes, cb))
		if n.clusters > 0 {
			n.firstCluster = uint32(next)
		}
		next += uint64(n.clusters)
	}
	var err error
	walk(root, func(n, _ *node) {
		if err != nil || !n.dir {
			return
		}
		entries := dirEntryCount(n, n == root, hasLabel)
		if entries > maxDirEntries {
			err = fmt.Errorf("directory %q needs %d entries; FAT allows %d", displayName(n), entries, maxDirEntries)
			return
		}
		// A directory always has at least one cluster, even the empty root.
		place(n, max(uint64(entries)*dirEntrySize, 1))
	})
	walk(root, func(n, _ *node) {
		if err != nil || n.dir {
			return
		}
		size, e := contentSize(n.file)
		if e != nil {
			err = e
			return
		}
		place(n, uint64(size))
	})
	if err != nil {
		return err
	}
	if used := next - rootCluster; used > uint64(g.clusters) {
		return fmt.Errorf("content needs %d clusters of %d bytes but the volume has %d (%d bytes short)",
			used, cb, g.clusters, (used-uint64(g.clusters))*cb)
	}
	return nil
}

// volume is one Write call's state.
type volume struct {
	w        io.WriterAt
	g        geometry
	label    shortName
	hasLabel bool
	opts     Options
	root     *node
}

func (v *volume) write(size int64) error {
	// The last sector goes first: it makes a plain file target exactly size
	// bytes long (fsck.fat and mtools check that), and any cluster data that
	// lands there later simply overwrites it.
	if err := v.writeAt(make([]byte, sectorSize), size-sectorSize, "last sector"); err != nil {
		return err
	}

	used := uint32(0)
	walk(v.root, func(n, _ *node) { used += n.clusters })
	free := v.g.clusters - used
	nextFree := uint32(rootCluster) + used
	if free == 0 {
		nextFree = fsInfoUnknown
	}

	reserved := make([]byte, reservedSectors*sectorSize)
	boot := v.bootSector()
	info := fsInfo(free, nextFree)
	copy(reserved[0:], boot)
	copy(reserved[fsInfoSector*sectorSize:], info)
	copy(reserved[backupBoot*sectorSize:], boot)
	copy(reserved[(backupBoot+1)*sectorSize:], info)
	if err := v.writeAt(reserved, 0, "reserved sectors"); err != nil {
		return err
	}

	table := v.fatTable()
	for i := 0; i < numFATs; i++ {
		if err := v.writeAt(table, v.g.fatOffset(i), fmt.Sprintf("FAT %d", i+1)); err != nil {
			return err
		}
	}

	var err error
	pad := make([]byte, v.g.clusterBytes())
	walk(v.root, func(n, parent *node) {
		if err != nil {
			return
		}
		if n.dir {
			err = v.writeDir(n, parent)
		} else {
			err = v.writeFile(n, pad)
		}
	})
	return err
}

func (v *volume) writeAt(b []byte, off int64, what string) error {
	if _, err := v.w.WriteAt(b, off); err != nil {
		return fmt.Errorf("write %s at offset %d: %w", what, off, err)
	}
	return nil
}

// bootSector builds the FAT32 boot sector with its BIOS parameter block.
func (v *volume) bootSector() []byte {
	b := make([]byte, sectorSize)
	// A short jump over the BPB to code that halts: this volume is for UEFI,
	// but a BIOS that boots it anyway should stop rather than run garbage.
	copy(b[0:3], []byte{0xEB, 0x58, 0x90})
	copy(b[3:11], "MSWIN4.1") // the OEM name Microsoft recommends for compatibility
	le := binary.LittleEndian
	le.PutUint16(b[11:], sectorSize)
	b[13] = byte(v.g.sectorsPerCluster)
	le.PutUint16(b[14:], reservedSectors)
	b[16] = numFATs
	// Root entry count, 16-bit sector count and 16-bit FAT size stay zero on FAT32.
	b[21] = mediaFixed
	// A CHS geometry that divides every 1 MiB-multiple volume, so tools that
	// cross-check it (mtools) accept the image.
	le.PutUint16(b[24:], 32) // sectors per track
	le.PutUint16(b[26:], 64) // heads
	le.PutUint32(b[28:], v.opts.HiddenSectors)
	le.PutUint32(b[32:], v.g.totalSectors)
	le.PutUint32(b[36:], v.g.fatSectors)
	// Extended flags 0: both FATs are kept identical. FS version 0.0.
	le.PutUint32(b[44:], rootCluster)
	le.PutUint16(b[48:], fsInfoSector)
	le.PutUint16(b[50:], backupBoot)
	b[64] = biosDriveFixed
	b[66] = extBootSig
	le.PutUint32(b[67:], v.opts.VolumeID)
	copy(b[71:82], v.label[:])
	copy(b[82:90], "FAT32   ")
	copy(b[90:], []byte{0xFA, 0xF4, 0xEB, 0xFD}) // cli; hlt; jmp back to hlt
	le.PutUint16(b[510:], bootSignature)
	return b
}

// fsInfo builds the FSInfo sector, the free-space hints drivers trust on mount.
func fsInfo(free, nextFree uint32) []byte {
	b := make([]byte, sectorSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], fsInfoLead)
	le.PutUint32(b[484:], fsInfoStruct)
	le.PutUint32(b[488:], free)
	le.PutUint32(b[492:], nextFree)
	le.PutUint32(b[508:], fsInfoTrail)
	return b
}

// fatTable builds one copy of the FAT: the two reserved entries, then a chain
// per allocated directory or file, the rest free.
func (v *volume) fatTable() []byte {
	b := make([]byte, int64(v.g.fatSectors)*sectorSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], 0x0FFFFF00|mediaFixed)
	// Entry 1 with the clean-shutdown and no-error bits set.
	le.PutUint32(b[4:], endOfChain)
	walk(v.root, func(n, _ *node) {
		for i := uint32(0); i < n.clusters; i++ {
			c := n.firstCluster + i
			val := uint32(c + 1)
			if i == n.clusters-1 {
				val = endOfChain
			}
			le.PutUint32(b[4*c:], val)
		}
	})
	return b
}

// writeDir writes directory d's clusters: label or dot entries, then for each
// child its long-name entries followed by its short entry.
func (v *volume) writeDir(d, parent *node) error {
	buf := make([]byte, int64(d.clusters)*v.g.clusterBytes())
	pos := 0
	add := func(e []byte) { pos += copy(buf[pos:], e) }

	if parent == nil {
		if v.hasLabel {
			add(dirEntry(v.label, attrVolumeID, 0, 0, d.modTime))
		}
	} else {
		parentCluster := parent.firstCluster
		if parent == v.root {
			parentCluster = 0 // ".." of a top-level directory points at "cluster 0", meaning the root
		}
		add(dirEntry(dotName("."), attrDirectory, d.firstCluster, 0, d.modTime))
		add(dirEntry(dotName(".."), attrDirectory, parentCluster, 0, parent.modTime))
	}
	for _, c := range d.children {
		if c.longName {
			for _, e := range longEntries(c.name, c.short.checksum()) {
				add(e)
			}
		}
		attr, size := byte(attrArchive), uint32(0)
		if c.dir {
			attr = attrDirectory
		} else {
			s, _ := contentSize(c.file) // validated in allocate
			size = uint32(s)
		}
		add(dirEntry(c.short, attr, c.firstCluster, size, c.modTime))
	}
	return v.writeAt(buf, v.g.clusterOffset(d.firstCluster), fmt.Sprintf("directory %q", displayName(d)))
}

// writeFile writes a file's content and zeroes the rest of its last cluster.
func (v *volume) writeFile(n *node, pad []byte) error {
	f := n.file
	size, _ := contentSize(f)
	if size == 0 {
		return nil
	}
	off := v.g.clusterOffset(n.firstCluster)
	if f.Reader != nil {
		copied, err := io.CopyN(io.NewOffsetWriter(v.w, off), f.Reader, size)
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("file %q: reader ended after %d of %d bytes", f.Path, copied, size)
		}
		if err != nil {
			return fmt.Errorf("file %q: %w", f.Path, err)
		}
		var extra [1]byte
		switch _, err := io.ReadFull(f.Reader, extra[:]); {
		case err == nil:
			return fmt.Errorf("file %q: reader has more than the declared %d bytes", f.Path, size)
		case !errors.Is(err, io.EOF):
			return fmt.Errorf("file %q: %w", f.Path, err)
		}
	} else if err := v.writeAt(f.Data, off, fmt.Sprintf("file %q", f.Path)); err != nil {
		return err
	}
	tail := int64(n.clusters)*v.g.clusterBytes() - size
	return v.writeAt(pad[:tail], off+size, fmt.Sprintf("file %q padding", f.Path))
}

// displayName names a node in errors; the root has no name of its own.
func displayName(n *node) string {
	if n.name == "" {
		return "/"
	}
	return n.name
}

func dotName(s string) shortName {
	var n shortName
	for i := range n {
		n[i] = ' '
	}
	copy(n[:], s)
	return n
}

// dirEntry encodes a short directory entry.
func dirEntry(name shortName, attr byte, cluster, size uint32, t time.Time) []byte {
	b := make([]byte, dirEntrySize)
	le := binary.LittleEndian
	copy(b[0:11], name[:])
	b[11] = attr
	date, clock, tenths := dosTime(t)
	b[13] = tenths
	le.PutUint16(b[14:], clock)
	le.PutUint16(b[16:], date)
	le.PutUint16(b[18:], date) // last access date
	le.PutUint16(b[20:], uint16(cluster>>16))
	le.PutUint16(b[22:], clock)
	le.PutUint16(b[24:], date)
	le.PutUint16(b[26:], uint16(cluster))
	le.PutUint32(b[28:], size)
	return b
}

// longEntries encodes name as VFAT long-name entries, in the order they are
// stored: the last 13-character piece first, flagged, down to piece 1.
func longEntries(name string, sum byte) [][]byte {
	units := utf16Units(name)
	count := longNameEntries(name)
	// The name is NUL-terminated unless it fills the last entry exactly; the
	// rest of the last entry is 0xFFFF.
	padded := make([]uint16, count*lfnChars)
	for i := range padded {
		switch {
		case i < len(units):
			padded[i] = units[i]
		case i == len(units):
			padded[i] = 0
		default:
			padded[i] = 0xFFFF
		}
	}
	// Character positions inside a long-name entry.
	offsets := [lfnChars]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}
	out := make([][]byte, 0, count)
	for seq := count; seq >= 1; seq-- {
		b := make([]byte, dirEntrySize)
		b[0] = byte(seq)
		if seq == count {
			b[0] |= lastLongEntry
		}
		b[11] = attrLongName
		b[13] = sum
		for i, off := range offsets {
			binary.LittleEndian.PutUint16(b[off:], padded[(seq-1)*lfnChars+i])
		}
		out = append(out, b)
	}
	return out
}

// dosTime converts t to FAT's date, 2-second time and 10 ms remainder.
func dosTime(t time.Time) (date, clock uint16, tenths byte) {
	switch {
	case t.Year() < 1980:
		return 1<<5 | 1, 0, 0 // 1980-01-01 00:00:00
	case t.Year() > 2107:
		return 127<<9 | 12<<5 | 31, 23<<11 | 59<<5 | 29, 100 + 99 // 2107-12-31 23:59:59.99
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	clock = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	tenths = byte(t.Second()%2*100 + t.Nanosecond()/10_000_000)
	return date, clock, tenths
}

// volumeLabel validates and pads the volume label.
func volumeLabel(label string) (shortName, error) {
	var s shortName
	if label == "" {
		copy(s[:], "NO NAME    ")
		return s, nil
	}
	upper := strings.ToUpper(label)
	if len(upper) > len(s) {
		return s, fmt.Errorf("volume label %q is longer than %d characters", label, len(s))
	}
	if strings.TrimSpace(upper) == "" || upper[0] == ' ' {
		return s, fmt.Errorf("volume label %q must start with a non-space character", label)
	}
	for i := range s {
		s[i] = ' '
	}
	for i := 0; i < len(upper); i++ {
		c := upper[i]
		if c != ' ' && !validShortChar(c) {
			return s, fmt.Errorf("volume label %q contains %q, which a FAT label cannot hold", label, c)
		}
		s[i] = c
	}
	return s, nil
}
