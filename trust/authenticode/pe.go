package authenticode

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
)

// Offsets in a PE32+ image (Microsoft PE/COFF specification).
const (
	peMagic32Plus   = 0x20b
	dirSecurity     = 4  // index of the Certificate Table data directory
	optChecksum     = 64 // CheckSum, from the optional header's start
	optSizeHeaders  = 60 // SizeOfHeaders
	optNumDirs      = 108
	optDirs         = 112 // the data directories, 8 bytes each
	sectionEntrySz  = 40
	sectionRawSize  = 16
	sectionRawPtr   = 20
	winCertHeaderSz = 8
)

// layout is where the parts of a PE32+ file that Authenticode cares about are.
type layout struct {
	checksum    int // offset of CheckSum
	certDir     int // offset of the Certificate Table directory entry
	sizeHeaders int
	sections    [][2]int // raw data [start, end), in file order
	certOff     int      // the certificate table, 0 and 0 if none
	certSize    int
}

// parse finds the layout of a PE32+ image and checks that what it points at lies in the file.
func parse(pe []byte) (*layout, error) {
	u16 := func(off int) int { return int(binary.LittleEndian.Uint16(pe[off:])) }
	u32 := func(off int) int { return int(binary.LittleEndian.Uint32(pe[off:])) }
	if len(pe) < 0x40 || pe[0] != 'M' || pe[1] != 'Z' {
		return nil, fmt.Errorf("not a PE image (no MZ header)")
	}
	nt := u32(0x3c)
	if nt < 0x40 || nt > len(pe)-24 || string(pe[nt:nt+4]) != "PE\x00\x00" {
		return nil, fmt.Errorf("not a PE image (no PE signature at 0x%x)", nt)
	}
	numSections, optSize := u16(nt+6), u16(nt+20)
	opt := nt + 24
	if opt+optSize > len(pe) || optSize < 2 {
		return nil, fmt.Errorf("optional header (%d bytes at 0x%x) does not fit in the file", optSize, opt)
	}
	if m := u16(opt); m != peMagic32Plus {
		return nil, fmt.Errorf("optional header magic 0x%x, want 0x%x (PE32+)", m, peMagic32Plus)
	}
	if optSize < optDirs+8*(dirSecurity+1) || u32(opt+optNumDirs) <= dirSecurity {
		return nil, fmt.Errorf("optional header has no Certificate Table directory")
	}
	l := &layout{
		checksum:    opt + optChecksum,
		certDir:     opt + optDirs + 8*dirSecurity,
		sizeHeaders: u32(opt + optSizeHeaders),
		certOff:     u32(opt + optDirs + 8*dirSecurity),
		certSize:    u32(opt + optDirs + 8*dirSecurity + 4),
	}
	secTable := opt + optSize
	if secTable+numSections*sectionEntrySz > len(pe) {
		return nil, fmt.Errorf("section table (%d sections at 0x%x) does not fit in the file", numSections, secTable)
	}
	if l.sizeHeaders < secTable+numSections*sectionEntrySz || l.sizeHeaders > len(pe) {
		return nil, fmt.Errorf("SizeOfHeaders 0x%x does not cover the headers or does not fit in the file (%d bytes)", l.sizeHeaders, len(pe))
	}
	end := len(pe) // where the signed part of the file ends
	if l.certSize != 0 {
		if l.certOff < l.sizeHeaders || l.certOff+l.certSize != len(pe) {
			return nil, fmt.Errorf("certificate table at 0x%x+0x%x is not at the end of the file (%d bytes)", l.certOff, l.certSize, len(pe))
		}
		end = l.certOff
	}
	for i := range numSections {
		s := secTable + i*sectionEntrySz
		size, ptr := u32(s+sectionRawSize), u32(s+sectionRawPtr)
		if size == 0 {
			continue
		}
		if ptr > end || size > end-ptr {
			return nil, fmt.Errorf("section %d (%q) raw data 0x%x+0x%x does not fit in the file's %d signed bytes", i, sectionName(pe[s:s+8]), ptr, size, end)
		}
		l.sections = append(l.sections, [2]int{ptr, ptr + size})
	}
	slices.SortStableFunc(l.sections, func(a, b [2]int) int { return cmp.Compare(a[0], b[0]) })
	return l, nil
}

func sectionName(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// checksum computes the PE image checksum: the 16-bit one's-complement-style sum of the file with
// the CheckSum field taken as zero, plus the file's length.
func checksum(pe []byte, checksumOff int) uint32 {
	var sum uint64
	for i := 0; i < len(pe); i += 2 {
		if i == checksumOff || i == checksumOff+2 {
			continue
		}
		w := uint64(pe[i])
		if i+1 < len(pe) {
			w |= uint64(pe[i+1]) << 8
		}
		sum += w
		sum = (sum & 0xffff) + (sum >> 16)
	}
	sum = (sum & 0xffff) + (sum >> 16)
	return uint32(sum) + uint32(len(pe))
}
