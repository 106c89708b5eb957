package gpt

import (
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf16"
)

// Standard table dimensions: 128 entries of 128 bytes, what every partitioning tool writes and
// what leaves the first usable LBA at 34 on 512-byte sectors.
const (
	StandardEntries   = 128
	StandardEntrySize = 128
	revision1         = 0x00010000
)

// New returns an empty primary table for a disk of diskSectors sectors: header at LBA 1, entries
// from LBA 2, the backup at the last sector with its entries right before it.
func New(sectorSize int, diskSectors uint64, disk GUID) (*Table, error) {
	if sectorSize < 512 || sectorSize&(sectorSize-1) != 0 {
		return nil, fmt.Errorf("invalid sector size %d", sectorSize)
	}
	entrySectors := uint64((StandardEntries*StandardEntrySize + sectorSize - 1) / sectorSize)
	if diskSectors < 3+2*entrySectors+1 {
		return nil, fmt.Errorf("disk of %d sectors is too small for a GPT", diskSectors)
	}
	t := &Table{
		SectorSize: sectorSize,
		Header: Header{
			Revision:       revision1,
			HeaderSize:     headerFieldsSize,
			MyLBA:          1,
			AlternateLBA:   diskSectors - 1,
			FirstUsableLBA: 2 + entrySectors,
			LastUsableLBA:  diskSectors - 2 - entrySectors,
			DiskGUID:       disk,
			EntriesLBA:     2,
			NumEntries:     StandardEntries,
			EntrySize:      StandardEntrySize,
		},
		entries: make([]byte, StandardEntries*StandardEntrySize),
	}
	return t, nil
}

// SetPartition writes p into entry p.Number. The partition must lie in the usable area, not overlap
// another one, and have a name of at most 36 UTF-16 code units.
func (t *Table) SetPartition(p Partition) error {
	if p.Number < 1 || p.Number > int(t.Header.NumEntries) {
		return fmt.Errorf("partition %d out of range (table has %d entries)", p.Number, t.Header.NumEntries)
	}
	if p.Type.IsZero() {
		return fmt.Errorf("partition %d: the zero type GUID marks an unused entry", p.Number)
	}
	if p.FirstLBA < t.Header.FirstUsableLBA || p.LastLBA > t.Header.LastUsableLBA || p.LastLBA < p.FirstLBA {
		return fmt.Errorf("partition %d: LBAs %d-%d outside the usable %d-%d", p.Number, p.FirstLBA, p.LastLBA,
			t.Header.FirstUsableLBA, t.Header.LastUsableLBA)
	}
	for _, o := range t.Partitions() {
		if o.Number != p.Number && p.FirstLBA <= o.LastLBA && o.FirstLBA <= p.LastLBA {
			return fmt.Errorf("partition %d (LBAs %d-%d) overlaps partition %d (LBAs %d-%d)", p.Number, p.FirstLBA, p.LastLBA, o.Number, o.FirstLBA, o.LastLBA)
		}
	}
	name := utf16.Encode([]rune(p.Name))
	if len(name) > 36 {
		return fmt.Errorf("partition %d: name %q is longer than 36 UTF-16 code units", p.Number, p.Name)
	}
	e := t.entry(p.Number - 1)
	clear(e)
	copy(e[0:16], p.Type[:])
	copy(e[16:32], p.ID[:])
	le := binary.LittleEndian
	le.PutUint64(e[32:], p.FirstLBA)
	le.PutUint64(e[40:], p.LastLBA)
	le.PutUint64(e[48:], p.Attributes)
	for i, c := range name {
		le.PutUint16(e[56+2*i:], c)
	}
	return nil
}

// ProtectiveMBR returns sector 0 of a GPT disk: one partition of type 0xEE from LBA 1 over the
// whole disk (capped at 32 bits), with the CHS fields the UEFI specification asks for (start
// 0x000200, end 0xFFFFFF), as sgdisk and fdisk write them. The boot code area is left zero.
func ProtectiveMBR(diskSectors uint64) []byte {
	mbr := make([]byte, 512)
	e := mbr[446:462]
	copy(e[1:4], []byte{0x00, 0x02, 0x00})
	e[4] = 0xee
	copy(e[5:8], []byte{0xff, 0xff, 0xff})
	binary.LittleEndian.PutUint32(e[8:], 1)
	binary.LittleEndian.PutUint32(e[12:], protectiveSize(diskSectors-1))
	mbr[510], mbr[511] = 0x55, 0xaa
	return mbr
}

func protectiveSize(lastLBA uint64) uint32 {
	if lastLBA >= 0xffffffff {
		return 0xffffffff
	}
	return uint32(lastLBA)
}

// WriteNew writes a new disk's tables through w: the protective MBR, the backup copy and then the
// primary (each copy entries first, then header; see Write). For a table that lives on a disk
// already, write the copies one by one with syncs in between, as growing does.
func (t *Table) WriteNew(w io.WriterAt) error {
	if _, err := w.WriteAt(ProtectiveMBR(t.Header.AlternateLBA+1), 0); err != nil {
		return fmt.Errorf("write protective MBR: %w", err)
	}
	if err := t.Backup().Write(w); err != nil {
		return fmt.Errorf("backup GPT: %w", err)
	}
	if err := t.Write(w); err != nil {
		return fmt.Errorf("primary GPT: %w", err)
	}
	return nil
}

// FixProtectiveMBR makes the protective MBR's 0xEE entry cover a disk whose backup header is now at
// lastLBA, as the UEFI specification asks (size = last LBA, capped at 32 bits). A hybrid MBR, or a
// sector that is not an MBR, is left alone: its other entries mean something to another OS and are
// not ours to rewrite.
func FixProtectiveMBR(rw interface {
	io.ReaderAt
	io.WriterAt
}, lastLBA uint64) error {
	mbr := make([]byte, 512)
	if _, err := rw.ReadAt(mbr, 0); err != nil {
		return fmt.Errorf("read protective MBR: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return nil
	}
	pmbr := -1
	for i := 0; i < 4; i++ {
		e := mbr[446+16*i : 446+16*(i+1)]
		switch {
		case e[4] == 0xee && binary.LittleEndian.Uint32(e[8:]) == 1 && pmbr < 0:
			pmbr = i
		case e[4] != 0:
			return nil
		}
	}
	if pmbr < 0 {
		return nil
	}
	want := protectiveSize(lastLBA)
	field := mbr[446+16*pmbr+12 : 446+16*pmbr+16]
	if binary.LittleEndian.Uint32(field) == want {
		return nil
	}
	binary.LittleEndian.PutUint32(field, want)
	if _, err := rw.WriteAt(field, int64(446+16*pmbr+12)); err != nil {
		return fmt.Errorf("write protective MBR: %w", err)
	}
	return nil
}
