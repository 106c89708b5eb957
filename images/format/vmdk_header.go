package format

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
)

// SparseExtentHeader values, from VMware's "Virtual Disk Format" technote.
const (
	vmdkMagic   = 0x564d444b // "KDMV" read little-endian
	vmdkVersion = 3          // the version streamOptimized extents carry
	// Flags: newline detection bytes are valid, grains are compressed,
	// and metadata is preceded by markers.
	vmdkFlags         = 1 | 1<<16 | 1<<17
	vmdkCompressZlib  = 1
	vmdkDescOffset    = 1  // the descriptor follows the header
	vmdkDescSectors   = 20 // room to rewrite the descriptor in place, inside the overhead anyway
	vmdkGDAtEnd       = ^uint64(0)
	vmdkMarkerEOS     = 0
	vmdkMarkerGT      = 1
	vmdkMarkerGD      = 2
	vmdkMarkerFooter  = 3
	vmdkHWVersion     = 4 // the lowest, which every VMware product and importer accepts
	vmdkAdapter       = "lsilogic"
	vmdkHeads         = 255
	vmdkSectorsPerTrk = 63
)

// vmdkHeader is the part of the SparseExtentHeader that varies. The header
// at the start of a stream does not know where the grain directory will
// be; the footer repeats it with gdOffset filled in.
type vmdkHeader struct {
	capacity uint64 // sectors
	gdOffset uint64 // sector of the grain directory, or vmdkGDAtEnd
}

func (h vmdkHeader) bytes() []byte {
	b := make([]byte, sectorSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], vmdkMagic)
	le.PutUint32(b[4:], vmdkVersion)
	le.PutUint32(b[8:], vmdkFlags)
	le.PutUint64(b[12:], h.capacity)
	le.PutUint64(b[20:], vmdkGrainSectors)
	le.PutUint64(b[28:], vmdkDescOffset)
	le.PutUint64(b[36:], vmdkDescSectors)
	le.PutUint32(b[44:], vmdkGTEntries)
	// 48: redundant grain directory — none.
	le.PutUint64(b[56:], h.gdOffset)
	le.PutUint64(b[64:], vmdkOverhead)
	// 72: unclean shutdown — no. Then the characters a reader checks to
	// detect a file mangled by a text-mode transfer.
	copy(b[73:77], "\n \r\n")
	le.PutUint16(b[77:], vmdkCompressZlib)
	return b
}

// vmdkDescriptor returns the embedded descriptor, padded to its reserved
// sectors. extent is the file name the VMDK will have: the descriptor
// names its own file as the single extent.
func vmdkDescriptor(size int64, extent string, uuid [16]byte) ([]byte, error) {
	if extent == "" || strings.ContainsAny(extent, "\"\r\n") {
		return nil, fmt.Errorf("file name %q cannot be written into a VMDK descriptor", extent)
	}
	capacity := size / sectorSize
	cylinders := min((capacity+vmdkHeads*vmdkSectorsPerTrk-1)/(vmdkHeads*vmdkSectorsPerTrk), 65535)
	// The content ID only has to change when the content does; the UUID
	// is derived from the content, and a fixed ID keeps builds identical.
	// 0xffffffff means "no parent" and is avoided.
	cid := crc32.ChecksumIEEE(uuid[:])
	if cid == 0xffffffff {
		cid = 0xfffffffe
	}
	var d strings.Builder
	fmt.Fprintf(&d, "# Disk DescriptorFile\n")
	fmt.Fprintf(&d, "version=1\n")
	fmt.Fprintf(&d, "CID=%08x\n", cid)
	fmt.Fprintf(&d, "parentCID=ffffffff\n")
	fmt.Fprintf(&d, "createType=\"streamOptimized\"\n\n")
	fmt.Fprintf(&d, "# Extent description\n")
	fmt.Fprintf(&d, "RW %d SPARSE \"%s\"\n\n", capacity, extent)
	fmt.Fprintf(&d, "# The Disk Data Base\n#DDB\n\n")
	fmt.Fprintf(&d, "ddb.adapterType = \"%s\"\n", vmdkAdapter)
	fmt.Fprintf(&d, "ddb.geometry.cylinders = \"%d\"\n", cylinders)
	fmt.Fprintf(&d, "ddb.geometry.heads = \"%d\"\n", vmdkHeads)
	fmt.Fprintf(&d, "ddb.geometry.sectors = \"%d\"\n", vmdkSectorsPerTrk)
	if uuid != [16]byte{} {
		fmt.Fprintf(&d, "ddb.uuid = \"%s\"\n", vmdkUUID(uuid))
	}
	fmt.Fprintf(&d, "ddb.virtualHWVersion = \"%d\"\n", vmdkHWVersion)
	if d.Len() > vmdkDescSectors*sectorSize {
		return nil, fmt.Errorf("descriptor is %d bytes, more than its %d sectors", d.Len(), vmdkDescSectors)
	}
	b := make([]byte, vmdkDescSectors*sectorSize)
	copy(b, d.String())
	return b, nil
}

// vmdkUUID formats a UUID the way VMware writes ddb.uuid: sixteen hex bytes
// separated by spaces, with a dash between the two halves.
func vmdkUUID(u [16]byte) string {
	var b strings.Builder
	for i, c := range u {
		switch {
		case i == 8:
			b.WriteByte('-')
		case i > 0:
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%02x", c)
	}
	return b.String()
}
