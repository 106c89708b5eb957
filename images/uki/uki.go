// Package uki assembles a Unified Kernel Image: the systemd-stub EFI program with the kernel,
// initrd, command line and os-release appended as PE sections, which the stub finds in its own
// loaded image and boots. One signed file then covers everything the boot trusts.
package uki

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
)

// Sections is what goes into the image. Linux is required; empty optional parts are left out,
// as ukify does.
type Sections struct {
	// Linux is the kernel as an EFI program (an x86 bzImage built with CONFIG_EFI_STUB).
	Linux []byte
	// Initrd is the initramfs, one or more concatenated (possibly compressed) cpio archives.
	Initrd []byte
	// Cmdline is the kernel command line, printable ASCII. It is stored without a trailing
	// NUL: the stub takes the section's size as the length, and measures exactly these bytes.
	Cmdline string
	// OSRelease is the os-release file of the image; boot menus read it to name the entry.
	OSRelease []byte
	// Uname is the kernel release (uname -r), for tools that inspect the UKI; systemd 252's
	// stub ignores it.
	Uname string
	// PCRPKey is the public key (PEM) that signs the UKI's expected PCR 11 policies; the stub
	// measures it and passes it to the initrd as /.extra/tpm2-pcr-public-key.pem.
	PCRPKey []byte
	// PCRSig is the signature file of the expected PCR 11 (JSON); the stub does not measure it
	// (it signs the measurement) and passes it to the initrd as /.extra/tpm2-pcr-signature.json.
	PCRSig []byte
}

type section struct {
	name            string
	data            []byte
	characteristics uint32
}

// list returns the new sections in ukify's order. .linux goes last so that a kernel run in
// place (the EFI handover path) has free memory after it to decompress into.
func (s Sections) list() ([]section, error) {
	if len(s.Linux) == 0 {
		return nil, fmt.Errorf("uki: no kernel (.linux is empty)")
	}
	if err := printable("command line", s.Cmdline); err != nil {
		return nil, err
	}
	if err := printable("uname", s.Uname); err != nil {
		return nil, err
	}
	const data = scnCntInitData | scnMemRead
	all := []section{
		{".osrel", s.OSRelease, data},
		{".cmdline", []byte(s.Cmdline), data},
		{".uname", []byte(s.Uname), data},
		{".pcrsig", s.PCRSig, data},
		{".pcrpkey", s.PCRPKey, data},
		{".initrd", s.Initrd, data},
		// Marked as code like ukify does, since the handover path executes it where it lies.
		{".linux", s.Linux, scnCntCode | scnMemRead},
	}
	return slices.DeleteFunc(all, func(sec section) bool { return len(sec.data) == 0 }), nil
}

// printable rejects what the stub would silently rewrite (control characters become spaces, a
// NUL ends the string, non-ASCII becomes a space on the handover path), so the kernel sees
// exactly what the builder wrote.
func printable(what, s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("uki: %s: byte 0x%02x at offset %d is not printable ASCII", what, c, i)
		}
	}
	return nil
}

// Build writes to w the stub with the sections of s appended. New sections are placed after the
// stub's last section in memory and in the file; what the stub file has after its last section
// (a COFF symbol table, undescribed bytes) is dropped first (dropTrailer), so the sections follow
// each other without gaps. Header fields that describe the image as a whole are updated
// and the PE checksum recomputed; the timestamp is left alone, so the output depends only on the
// inputs. The stub must have room for the new section headers before its first section's data.
func Build(w io.Writer, stub []byte, s Sections) error {
	secs, err := s.list()
	if err != nil {
		return err
	}
	img, err := parsePE(stub, "stub")
	if err != nil {
		return err
	}
	if img.signed(stub) {
		return fmt.Errorf("uki: stub carries an Authenticode signature that appending sections would break; sign the UKI instead")
	}
	if trimmed := dropTrailer(stub, img); len(trimmed) != len(stub) {
		stub = trimmed
		if img, err = parsePE(stub, "stub"); err != nil {
			return err
		}
	}
	kernel, err := parsePE(s.Linux, "kernel")
	if err != nil {
		return fmt.Errorf("%w (want an EFI-stub kernel image such as a bzImage)", err)
	}
	if kernel.machine != img.machine {
		return fmt.Errorf("uki: kernel is for PE machine %#x, stub for %#x", kernel.machine, img.machine)
	}

	// The PE specification caps images at 96 sections, and systemd-stub refuses more.
	if n := img.numSections + len(secs); n > maxSections {
		return fmt.Errorf("uki: stub has %d sections; with %d more it exceeds the PE limit of %d", img.numSections, len(secs), maxSections)
	}
	sizeOfHeaders := alignUp(uint64(img.sizeOfHeaders), uint64(img.fileAlignment))
	tableEnd := img.sectionTable + (img.numSections+len(secs))*sectionHdrSize
	if uint64(tableEnd) > min(sizeOfHeaders, uint64(img.firstRawData)) {
		free := (int(min(sizeOfHeaders, uint64(img.firstRawData))) - img.sectionTable) / sectionHdrSize
		return fmt.Errorf("uki: stub has room for %d section headers before its first section data at %#x; "+
			"it has %d and %d more are needed", free, img.firstRawData, img.numSections, len(secs))
	}
	// Bytes between the section table and the first section are normally padding; if the stub
	// keeps something there, overwriting it would corrupt the stub.
	if at := headerData(stub, img, tableEnd); at >= 0 {
		return fmt.Errorf("uki: stub has data at %#x, where the new section headers would go", at)
	}

	out := slices.Clone(stub)
	le := binary.LittleEndian
	fileOff := alignUp(uint64(len(stub)), uint64(img.fileAlignment))
	va := alignUp(max(img.imageEnd, uint64(img.sizeOfImage)), uint64(img.sectionAlignment))
	parts := [][]byte{out, make([]byte, fileOff-uint64(len(stub)))}
	sizeOfCode := uint64(le.Uint32(out[img.opt+optSizeOfCode:]))
	sizeOfInitData := uint64(le.Uint32(out[img.opt+optSizeOfInitData:]))
	for i, sec := range secs {
		rawSize := alignUp(uint64(len(sec.data)), uint64(img.fileAlignment))
		if fileOff+rawSize > math.MaxUint32 || va+uint64(len(sec.data)) > math.MaxUint32 {
			return fmt.Errorf("uki: section %s of %d bytes does not fit a PE image's 4 GiB", sec.name, len(sec.data))
		}
		h := out[img.sectionTable+(img.numSections+i)*sectionHdrSize:][:sectionHdrSize]
		clear(h) // padding (an arm64 stub's is NOPs) must not leak into relocation or line fields
		copy(h[secName:secName+8], sec.name)
		// The stub locates its sections by VirtualSize, so it must be the exact content size.
		le.PutUint32(h[secVirtualSize:], uint32(len(sec.data)))
		le.PutUint32(h[secVirtualAddress:], uint32(va))
		le.PutUint32(h[secSizeOfRawData:], uint32(rawSize))
		le.PutUint32(h[secPointerToRaw:], uint32(fileOff))
		le.PutUint32(h[secCharacteristics:], sec.characteristics)
		parts = append(parts, sec.data, make([]byte, rawSize-uint64(len(sec.data))))
		if sec.characteristics&scnCntCode != 0 {
			sizeOfCode += rawSize
		} else {
			sizeOfInitData += rawSize
		}
		fileOff += rawSize
		va = alignUp(va+uint64(len(sec.data)), uint64(img.sectionAlignment))
	}
	if sizeOfCode > math.MaxUint32 || sizeOfInitData > math.MaxUint32 {
		return fmt.Errorf("uki: image of %d bytes is too large for PE", fileOff)
	}
	le.PutUint16(out[img.coff+coffNumberOfSections:], uint16(img.numSections+len(secs)))
	le.PutUint32(out[img.opt+optSizeOfCode:], uint32(sizeOfCode))
	le.PutUint32(out[img.opt+optSizeOfInitData:], uint32(sizeOfInitData))
	le.PutUint32(out[img.opt+optSizeOfImage:], uint32(va)) // va is the aligned end of the last section
	le.PutUint32(out[img.opt+optSizeOfHeaders:], uint32(sizeOfHeaders))
	le.PutUint32(out[img.opt+optCheckSum:], 0)
	le.PutUint32(out[img.opt+optCheckSum:], peChecksum(parts...))

	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return fmt.Errorf("uki: write image: %w", err)
		}
	}
	return nil
}

// arm64Nop is AArch64's NOP instruction, little-endian: the arm64 linker pads the headers'
// file space with it rather than zeros.
var arm64Nop = []byte{0x1f, 0x20, 0x03, 0xd5}

// headerData returns the offset of the first byte between the stub's section table and tableEnd
// that is not padding, -1 when all are: zeros, or whole NOP words on an arm64 stub.
func headerData(stub []byte, img peImage, tableEnd int) int {
	start := img.sectionTable + img.numSections*sectionHdrSize
	for i := start; i < tableEnd; i++ {
		if stub[i] == 0 {
			continue
		}
		if w := i &^ 3; img.machine == 0xaa64 && w+4 <= len(stub) && bytes.Equal(stub[w:w+4], arm64Nop) {
			i = w + 3
			continue
		}
		return i
	}
	return -1
}
