package iso

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/gpt"
)

// El Torito (1995) values.
const (
	elToritoID      = "EL TORITO SPECIFICATION"
	platformEFI     = 0xEF
	entryBootable   = 0x88
	mediaNoEmul     = 0
	catalogHeaderID = 1
)

// GPT of the hybrid image, in 512-byte sectors.
const (
	sectorSize = 512
	// gptTailBytes is the backup GPT: the standard 128-entry array and the header.
	gptTailBytes = (gpt.StandardEntries*gpt.StandardEntrySize)/sectorSize*sectorSize + sectorSize
	espName      = "EFI System Partition"
)

var espType = [16]byte{0xc1, 0x2a, 0x73, 0x28, 0xf8, 0x1f, 0x11, 0xd2, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b}

// bootRecord is the El Torito boot record volume descriptor pointing at the boot catalog.
func bootRecord(catalog uint32) []byte {
	b := make([]byte, blockSize)
	b[0] = vdBootRecord
	copy(b[1:], standardID)
	b[6] = 1
	copy(b[7:39], elToritoID) // boot system identifier, NUL padded
	binary.LittleEndian.PutUint32(b[71:], catalog)
	return b
}

// bootCatalog has a validation entry for the EFI platform and a default entry that boots the
// image at block without emulation. This is what xorriso writes when the only boot image is an
// EFI one (-e without -b): the platform sits in the validation entry, which the default entry
// belongs to, rather than in a section header, which only images after the default one need.
func bootCatalog(block uint32, size int) []byte {
	b := make([]byte, blockSize)
	v := b[0:32]
	v[0] = catalogHeaderID
	v[1] = platformEFI
	v[30], v[31] = 0x55, 0xAA
	var sum uint16
	for i := 0; i < 32; i += 2 {
		sum += binary.LittleEndian.Uint16(v[i:])
	}
	binary.LittleEndian.PutUint16(v[28:], -sum) // the words of the entry sum to zero
	d := b[32:64]
	d[0] = entryBootable
	d[1] = mediaNoEmul
	// The sector count (512-byte virtual sectors) is 16 bits; firmware takes the FAT's own size
	// for larger images, and xorriso caps it the same way.
	binary.LittleEndian.PutUint16(d[6:], uint16(min(size/sectorSize, 0xFFFF)))
	binary.LittleEndian.PutUint32(d[8:], block)
	return b
}

// writeGPT writes the protective MBR, the primary GPT in the system area and the backup GPT at
// the end, with one EFI System Partition over exactly the FAT image's bytes.
func (l *layout) writeGPT(w io.WriterAt, opts Options, content hash.Hash) error {
	var sum []byte
	if content != nil {
		sum = content.Sum(nil)
	}
	disk := contract.UUID(opts.DiskGUID)
	if disk == (contract.UUID{}) {
		disk = derivedUUID("disk", sum)
	}
	part := derivedUUID("esp", append(disk[:], sum...))
	sectors := uint64(l.total) * (blockSize / sectorSize)
	t, err := gpt.New(sectorSize, sectors, gpt.FromUUID(disk))
	if err != nil {
		return fmt.Errorf("GPT: %w", err)
	}
	first := uint64(l.efiBlock) * (blockSize / sectorSize)
	err = t.SetPartition(gpt.Partition{
		Number:   1,
		Type:     gpt.FromUUID(espType),
		ID:       gpt.FromUUID(part),
		FirstLBA: first,
		LastLBA:  first + uint64(len(opts.EFIBoot)/sectorSize) - 1,
		Name:     espName,
	})
	if err != nil {
		return fmt.Errorf("GPT: %w", err)
	}
	if end := (t.Header.EntriesLBA + t.EntrySectors()) * sectorSize; end > systemAreaBlocks*blockSize {
		return fmt.Errorf("GPT: primary entries end at offset %d, past the %d-byte system area", end, systemAreaBlocks*blockSize)
	}
	if err := t.WriteNew(w); err != nil {
		return fmt.Errorf("GPT: %w", err)
	}
	return nil
}

// derivedUUID makes a version 4 style UUID from what and data: random-looking, but the same for
// the same image.
func derivedUUID(what string, data []byte) contract.UUID {
	h := sha256.Sum256(append([]byte("ballast iso9660 "+what+"\x00"), data...))
	var u contract.UUID
	copy(u[:], h[:16])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}
