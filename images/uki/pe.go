package uki

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Offsets in the PE32+ format (Microsoft PE/COFF specification) that Build reads or patches.
const (
	dosLfanewOffset = 0x3c
	coffHeaderSize  = 20
	sectionHdrSize  = 40
	maxSections     = 96

	// In the COFF file header, after the 4-byte "PE\0\0" signature.
	coffMachine          = 0
	coffNumberOfSections = 2
	coffPointerToSymbols = 8
	coffNumberOfSymbols  = 12
	coffSizeOfOptHeader  = 16

	// In the PE32+ optional header.
	optMagic               = 0
	optSizeOfCode          = 4
	optSizeOfInitData      = 8
	optSectionAlignment    = 32
	optFileAlignment       = 36
	optSizeOfImage         = 56
	optSizeOfHeaders       = 60
	optCheckSum            = 64
	optNumberOfRvaAndSizes = 108
	optDataDirectories     = 112
	dataDirSecurity        = 4 // the Authenticode certificate table
	pe32PlusMagic          = 0x20b
	pe32PlusFixedSize      = optDataDirectories

	// In a section header.
	secName            = 0
	secVirtualSize     = 8
	secVirtualAddress  = 12
	secSizeOfRawData   = 16
	secPointerToRaw    = 20
	secCharacteristics = 36

	scnCntCode     = 0x00000020
	scnCntInitData = 0x00000040
	scnMemRead     = 0x40000000
)

// peImage is what Build needs to know about the stub: where its headers are and where its
// sections end, in the file and in memory.
type peImage struct {
	machine          uint16
	coff             int // offset of the COFF file header
	opt              int // offset of the optional header
	sectionTable     int
	numSections      int
	sectionAlignment uint32
	fileAlignment    uint32
	sizeOfImage      uint32
	sizeOfHeaders    uint32
	firstRawData     uint32 // lowest PointerToRawData of a section with file data: headers must end before it
	imageEnd         uint64 // highest VirtualAddress+size of any section
	rawEnd           uint64 // end of the last section's data in the file
}

// parsePE checks that b is a PE32+ image Build can extend and reads its layout. name says
// which input b is, for errors.
func parsePE(b []byte, name string) (peImage, error) {
	le := binary.LittleEndian
	if len(b) < dosLfanewOffset+4 || string(b[:2]) != "MZ" {
		return peImage{}, fmt.Errorf("uki: %s: not a PE image (no MZ header)", name)
	}
	lfanew := int(le.Uint32(b[dosLfanewOffset:]))
	if lfanew < 0 || lfanew > len(b)-4-coffHeaderSize || string(b[lfanew:lfanew+4]) != "PE\x00\x00" {
		return peImage{}, fmt.Errorf("uki: %s: no PE signature at offset %#x", name, lfanew)
	}
	img := peImage{coff: lfanew + 4}
	img.machine = le.Uint16(b[img.coff+coffMachine:])
	img.numSections = int(le.Uint16(b[img.coff+coffNumberOfSections:]))
	optSize := int(le.Uint16(b[img.coff+coffSizeOfOptHeader:]))
	img.opt = img.coff + coffHeaderSize
	img.sectionTable = img.opt + optSize
	if optSize < pe32PlusFixedSize || img.sectionTable > len(b) {
		return peImage{}, fmt.Errorf("uki: %s: optional header of %d bytes is truncated", name, optSize)
	}
	if m := le.Uint16(b[img.opt+optMagic:]); m != pe32PlusMagic {
		return peImage{}, fmt.Errorf("uki: %s: optional header magic %#x, want PE32+ (%#x)", name, m, pe32PlusMagic)
	}
	img.sectionAlignment = le.Uint32(b[img.opt+optSectionAlignment:])
	img.fileAlignment = le.Uint32(b[img.opt+optFileAlignment:])
	img.sizeOfImage = le.Uint32(b[img.opt+optSizeOfImage:])
	img.sizeOfHeaders = le.Uint32(b[img.opt+optSizeOfHeaders:])
	if !validAlignment(img.fileAlignment) || !validAlignment(img.sectionAlignment) ||
		img.sectionAlignment < img.fileAlignment {
		return peImage{}, fmt.Errorf("uki: %s: unusable alignment (file %#x, section %#x)",
			name, img.fileAlignment, img.sectionAlignment)
	}
	if end := img.sectionTable + img.numSections*sectionHdrSize; end > len(b) {
		return peImage{}, fmt.Errorf("uki: %s: section table of %d entries runs past the end of the file", name, img.numSections)
	}

	img.firstRawData = uint32(len(b))
	for i := range img.numSections {
		s := b[img.sectionTable+i*sectionHdrSize:]
		va := le.Uint32(s[secVirtualAddress:])
		vsize := le.Uint32(s[secVirtualSize:])
		rawSize := le.Uint32(s[secSizeOfRawData:])
		rawPtr := le.Uint32(s[secPointerToRaw:])
		// A loader maps VirtualSize bytes, or the raw size when VirtualSize is zero; take the larger
		// so a new section never overlaps either reading.
		img.imageEnd = max(img.imageEnd, uint64(va)+uint64(max(vsize, rawSize)))
		if rawSize == 0 {
			continue
		}
		if rawPtr%img.fileAlignment != 0 {
			return peImage{}, fmt.Errorf("uki: %s: section %d (%s) data at %#x is not aligned to the file alignment %#x",
				name, i, sectionName(s), rawPtr, img.fileAlignment)
		}
		if uint64(rawPtr)+uint64(rawSize) > uint64(len(b)) {
			return peImage{}, fmt.Errorf("uki: %s: section %d (%s) data runs past the end of the file", name, i, sectionName(s))
		}
		img.firstRawData = min(img.firstRawData, rawPtr)
		img.rawEnd = max(img.rawEnd, uint64(rawPtr)+uint64(rawSize))
	}
	return img, nil
}

// signed reports whether the image carries an Authenticode signature, which adding sections
// would invalidate.
func (img peImage) signed(b []byte) bool {
	le := binary.LittleEndian
	if le.Uint32(b[img.opt+optNumberOfRvaAndSizes:]) <= dataDirSecurity {
		return false
	}
	dir := img.opt + optDataDirectories + dataDirSecurity*8
	if dir+8 > img.sectionTable {
		return false
	}
	return le.Uint32(b[dir:]) != 0 || le.Uint32(b[dir+4:]) != 0
}

func validAlignment(a uint32) bool {
	return a >= 512 && bits.OnesCount32(a) == 1
}

func sectionName(hdr []byte) string {
	n := hdr[secName : secName+8]
	for i, c := range n {
		if c == 0 {
			return string(n[:i])
		}
	}
	return string(n)
}

func alignUp(v, a uint64) uint64 {
	return (v + a - 1) &^ (a - 1)
}

// dropTrailer returns b without what follows its last section's data: a COFF symbol table (debug
// symbols a linker left in the stub, the header then no longer pointing at it) or bytes no header
// describes (Debian's arm64 stub ends with 5 KiB of them, its version string among them). Sections
// appended after them would leave a gap between sections, and Authenticode digests of images with
// gaps differ between the specification, EDK2's verifier and sbverify: the firmware refused a
// correctly signed arm64 UKI. The loader never reads those bytes: it loads sections. The caller
// refuses a signed stub first, whose certificates are there.
func dropTrailer(b []byte, img peImage) []byte {
	if uint64(len(b)) <= img.rawEnd {
		return b
	}
	out := append([]byte(nil), b[:img.rawEnd]...)
	le := binary.LittleEndian
	if ptr := uint64(le.Uint32(out[img.coff+coffPointerToSymbols:])); ptr >= img.rawEnd {
		le.PutUint32(out[img.coff+coffPointerToSymbols:], 0)
		le.PutUint32(out[img.coff+coffNumberOfSymbols:], 0)
	}
	return out
}
