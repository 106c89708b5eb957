// Package gpt reads, writes and rewrites GUID Partition Tables on anything that offers
// ReadAt/WriteAt. It is the one GPT implementation of Ballast: the builder writes new disks with it
// (New, SetPartition, WriteNew), and the initramfs finds partitions and grows the data partition
// with it, without udev, libblkid or sgdisk.
//
// It is written here rather than taken from go-diskfs's gpt package because the initramfs needs
// what that package does not offer: reading a table without trusting a damaged copy blindly,
// rewriting one copy at a time with a sync in between (backup first, so a power cut leaves one
// valid copy), keeping unknown entry bytes of a foreign table intact, and a small binary (no
// dependencies beyond the standard library). One implementation for both jobs means the tables
// the builder writes are exactly the ones the initramfs is tested to read and grow; sgdisk -v and
// the kernel cross-check them in the tests.
//
// The entry array is kept as the raw bytes read from disk and only the fields Ballast changes are
// patched, so names, attributes and vendor bytes in larger entries survive a rewrite unchanged.
package gpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"
)

const (
	signature = "EFI PART"
	// headerFieldsSize is the size of the UEFI-defined header fields; bytes beyond it, up to
	// HeaderSize, are reserved but still covered by the header CRC.
	headerFieldsSize = 92
	minEntrySize     = 128
	// maxEntryBytes bounds the entry array we are willing to allocate, so a garbage header on an
	// unrelated disk cannot make the initramfs allocate gigabytes.
	maxEntryBytes = 1 << 20
)

// ErrNoGPT means the sector holds no GPT signature at all, as opposed to a damaged header.
var ErrNoGPT = errors.New("no GPT signature")

// Header holds the GPT header fields. Names follow the UEFI specification.
type Header struct {
	Revision       uint32
	HeaderSize     uint32
	MyLBA          uint64
	AlternateLBA   uint64
	FirstUsableLBA uint64
	LastUsableLBA  uint64
	DiskGUID       GUID
	EntriesLBA     uint64
	NumEntries     uint32
	EntrySize      uint32
}

// Table is one copy (primary or backup) of a GPT: its header and its entry array.
type Table struct {
	SectorSize int
	Header     Header
	// reserved holds header bytes beyond the defined fields; they are part of the CRC and are
	// written back as read.
	reserved []byte
	entries  []byte
}

// Partition is a used entry of the table. Number is the entry's index + 1, which is the number the
// kernel gives the partition (sda<N>, nvme0n1p<N>).
type Partition struct {
	Number     int
	Type       GUID
	ID         GUID // the PARTUUID
	FirstLBA   uint64
	LastLBA    uint64 // inclusive
	Attributes uint64
	Name       string
}

// Sectors is the partition's length in sectors.
func (p Partition) Sectors() uint64 { return p.LastLBA - p.FirstLBA + 1 }

// Read reads and verifies (signature, both CRCs, self-reference) the GPT header at lba and its entry
// array. Use lba 1 for the primary copy and the disk's last sector for the backup.
func Read(r io.ReaderAt, sectorSize int, lba uint64) (*Table, error) {
	if sectorSize < 512 || sectorSize&(sectorSize-1) != 0 {
		return nil, fmt.Errorf("invalid sector size %d", sectorSize)
	}
	sec := make([]byte, sectorSize)
	if _, err := r.ReadAt(sec, int64(lba)*int64(sectorSize)); err != nil {
		return nil, fmt.Errorf("read GPT header at LBA %d: %w", lba, err)
	}
	t, entriesCRC, err := parseHeader(sec, lba)
	if err != nil {
		return nil, err
	}
	t.SectorSize = sectorSize
	t.entries = make([]byte, int(t.Header.NumEntries)*int(t.Header.EntrySize))
	if _, err := r.ReadAt(t.entries, int64(t.Header.EntriesLBA)*int64(sectorSize)); err != nil {
		return nil, fmt.Errorf("read GPT entries at LBA %d (header at LBA %d): %w", t.Header.EntriesLBA, lba, err)
	}
	if got := crc32.ChecksumIEEE(t.entries); got != entriesCRC {
		return nil, fmt.Errorf("GPT header at LBA %d: partition entry array CRC mismatch (stored %#08x, computed %#08x)", lba, entriesCRC, got)
	}
	return t, nil
}

// ReadPrimary reads the primary GPT at LBA 1.
func ReadPrimary(r io.ReaderAt, sectorSize int) (*Table, error) { return Read(r, sectorSize, 1) }

// ReadBackup reads the backup GPT from the last sector of a disk of diskBytes bytes.
func ReadBackup(r io.ReaderAt, sectorSize int, diskBytes int64) (*Table, error) {
	n := diskBytes / int64(sectorSize)
	if n < 3 {
		return nil, fmt.Errorf("disk of %d bytes is too small for a GPT", diskBytes)
	}
	return Read(r, sectorSize, uint64(n-1))
}

func parseHeader(sec []byte, lba uint64) (*Table, uint32, error) {
	if string(sec[:8]) != signature {
		return nil, 0, fmt.Errorf("%w at LBA %d", ErrNoGPT, lba)
	}
	le := binary.LittleEndian
	h := Header{
		Revision:       le.Uint32(sec[8:]),
		HeaderSize:     le.Uint32(sec[12:]),
		MyLBA:          le.Uint64(sec[24:]),
		AlternateLBA:   le.Uint64(sec[32:]),
		FirstUsableLBA: le.Uint64(sec[40:]),
		LastUsableLBA:  le.Uint64(sec[48:]),
		EntriesLBA:     le.Uint64(sec[72:]),
		NumEntries:     le.Uint32(sec[80:]),
		EntrySize:      le.Uint32(sec[84:]),
	}
	copy(h.DiskGUID[:], sec[56:72])
	if h.HeaderSize < headerFieldsSize || int(h.HeaderSize) > len(sec) {
		return nil, 0, fmt.Errorf("GPT header at LBA %d: invalid header size %d", lba, h.HeaderSize)
	}
	stored := le.Uint32(sec[16:])
	if got := headerCRC(sec[:h.HeaderSize]); got != stored {
		return nil, 0, fmt.Errorf("GPT header at LBA %d: header CRC mismatch (stored %#08x, computed %#08x)", lba, stored, got)
	}
	if h.MyLBA != lba {
		return nil, 0, fmt.Errorf("GPT header at LBA %d claims to be at LBA %d", lba, h.MyLBA)
	}
	if h.EntrySize < minEntrySize || h.EntrySize%minEntrySize != 0 {
		return nil, 0, fmt.Errorf("GPT header at LBA %d: invalid entry size %d", lba, h.EntrySize)
	}
	if uint64(h.NumEntries)*uint64(h.EntrySize) > maxEntryBytes {
		return nil, 0, fmt.Errorf("GPT header at LBA %d: entry array of %d×%d bytes is implausibly large", lba, h.NumEntries, h.EntrySize)
	}
	if h.FirstUsableLBA > h.LastUsableLBA {
		return nil, 0, fmt.Errorf("GPT header at LBA %d: first usable LBA %d after last usable LBA %d", lba, h.FirstUsableLBA, h.LastUsableLBA)
	}
	t := &Table{Header: h, reserved: bytes.Clone(sec[headerFieldsSize:h.HeaderSize])}
	return t, le.Uint32(sec[88:]), nil
}

// headerCRC is the CRC32 of the header with its own CRC field taken as zero.
func headerCRC(hdr []byte) uint32 {
	c := bytes.Clone(hdr)
	binary.LittleEndian.PutUint32(c[16:], 0)
	return crc32.ChecksumIEEE(c)
}

// EntrySectors is how many sectors the entry array occupies.
func (t *Table) EntrySectors() uint64 {
	n := uint64(t.Header.NumEntries) * uint64(t.Header.EntrySize)
	ss := uint64(t.SectorSize)
	return (n + ss - 1) / ss
}

// Partitions lists the used entries (type GUID not zero) in entry order.
func (t *Table) Partitions() []Partition {
	var ps []Partition
	for i := 0; i < int(t.Header.NumEntries); i++ {
		e := t.entry(i)
		var p Partition
		copy(p.Type[:], e[0:16])
		if p.Type.IsZero() {
			continue
		}
		le := binary.LittleEndian
		copy(p.ID[:], e[16:32])
		p.Number = i + 1
		p.FirstLBA = le.Uint64(e[32:])
		p.LastLBA = le.Uint64(e[40:])
		p.Attributes = le.Uint64(e[48:])
		p.Name = decodeName(e[56:128])
		ps = append(ps, p)
	}
	return ps
}

func (t *Table) entry(i int) []byte {
	sz := int(t.Header.EntrySize)
	return t.entries[i*sz : (i+1)*sz]
}

// SetLastLBA changes the inclusive end of partition number n.
func (t *Table) SetLastLBA(n int, last uint64) error {
	if n < 1 || n > int(t.Header.NumEntries) {
		return fmt.Errorf("partition %d out of range (table has %d entries)", n, t.Header.NumEntries)
	}
	e := t.entry(n - 1)
	if GUID(e[0:16]).IsZero() {
		return fmt.Errorf("partition %d is unused", n)
	}
	if first := binary.LittleEndian.Uint64(e[32:]); last < first {
		return fmt.Errorf("partition %d: new last LBA %d before first LBA %d", n, last, first)
	}
	binary.LittleEndian.PutUint64(e[40:], last)
	return nil
}

// Backup returns the backup copy matching this primary table: header at AlternateLBA, entry array
// right before it, self/alternate references swapped, same entries.
func (t *Table) Backup() *Table {
	b := t.clone()
	b.Header.MyLBA, b.Header.AlternateLBA = t.Header.AlternateLBA, t.Header.MyLBA
	b.Header.EntriesLBA = t.Header.AlternateLBA - t.EntrySectors()
	return b
}

func (t *Table) clone() *Table {
	c := *t
	c.reserved = bytes.Clone(t.reserved)
	c.entries = bytes.Clone(t.entries)
	return &c
}

// MarshalHeader returns the header sector with both CRCs computed from the current contents.
func (t *Table) MarshalHeader() []byte {
	h := t.Header
	sec := make([]byte, t.SectorSize)
	le := binary.LittleEndian
	copy(sec, signature)
	le.PutUint32(sec[8:], h.Revision)
	le.PutUint32(sec[12:], h.HeaderSize)
	le.PutUint64(sec[24:], h.MyLBA)
	le.PutUint64(sec[32:], h.AlternateLBA)
	le.PutUint64(sec[40:], h.FirstUsableLBA)
	le.PutUint64(sec[48:], h.LastUsableLBA)
	copy(sec[56:72], h.DiskGUID[:])
	le.PutUint64(sec[72:], h.EntriesLBA)
	le.PutUint32(sec[80:], h.NumEntries)
	le.PutUint32(sec[84:], h.EntrySize)
	le.PutUint32(sec[88:], crc32.ChecksumIEEE(t.entries))
	copy(sec[headerFieldsSize:h.HeaderSize], t.reserved)
	le.PutUint32(sec[16:], headerCRC(sec[:h.HeaderSize]))
	return sec
}

// Write writes the entry array and then the header. In that order a crash in between leaves a header
// whose entry CRC no longer matches, which readers (the kernel included) reject in favour of the
// other copy, rather than a valid header describing entries that were never written. The caller syncs.
func (t *Table) Write(w io.WriterAt) error {
	ss := int64(t.SectorSize)
	arr := make([]byte, int(t.EntrySectors())*t.SectorSize)
	copy(arr, t.entries)
	if _, err := w.WriteAt(arr, int64(t.Header.EntriesLBA)*ss); err != nil {
		return fmt.Errorf("write GPT entries at LBA %d: %w", t.Header.EntriesLBA, err)
	}
	if _, err := w.WriteAt(t.MarshalHeader(), int64(t.Header.MyLBA)*ss); err != nil {
		return fmt.Errorf("write GPT header at LBA %d: %w", t.Header.MyLBA, err)
	}
	return nil
}

func decodeName(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}
