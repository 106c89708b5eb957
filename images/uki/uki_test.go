package uki

import (
	"bytes"
	"context"
	"debug/pe"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/packages/debian"
	"github.com/ballast-os/ballast/tests/testutil"
)

// stubEnv names another systemd-stub to test against than the one images carry.
const stubEnv = "BALLAST_SYSTEMD_STUB"

// The stub the builder puts into UKIs: this file of the systemd-boot-efi package that
// packages/debian.lock pins (builder/pipeline's stubPackage and stubPath).
const (
	stubPackage = "systemd-boot-efi"
	stubPath    = "usr/lib/systemd/boot/efi/linuxx64.efi.stub"
)

var pinnedStub struct {
	once sync.Once
	path string
	err  error
}

// realStub returns $BALLAST_SYSTEMD_STUB, or the pinned stub, fetched into the verified download
// cache the first time, as the builder does: the host's own systemd-boot-efi, if any, is not what
// images carry.
func realStub(t *testing.T) []byte {
	t.Helper()
	pinnedStub.once.Do(func() {
		if p := os.Getenv(stubEnv); p != "" {
			pinnedStub.path = p
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		lock := filepath.Join(testutil.RepoRoot(t), "packages", "debian.lock")
		dir, err := debian.UnpackPinned(ctx, lock, stubPackage, contract.DefaultArch, "")
		pinnedStub.path, pinnedStub.err = filepath.Join(dir, stubPath), err
	})
	if pinnedStub.err != nil {
		t.Fatalf("systemd-stub (%s may name one instead): %v", stubEnv, pinnedStub.err)
	}
	b, err := os.ReadFile(pinnedStub.path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakePE is a minimal PE32+ image: enough structure for Build, and a stand-in for the kernel.
type fakePE struct {
	machine       uint16
	magic         uint16
	sizeOfHeaders uint32
	fileAlign     uint32
	sectionAlign  uint32
	signed        bool
	sections      []fakeSection
	trailer       []byte // appended after the last section, like a COFF symbol table
}

type fakeSection struct {
	name  string
	va    uint32
	data  []byte
	raw   uint32 // PointerToRawData; 0 means the next aligned offset
	chars uint32
}

func defaultFake() fakePE {
	return fakePE{
		machine: 0x8664, magic: pe32PlusMagic, sizeOfHeaders: 0x400, fileAlign: 0x200, sectionAlign: 0x1000,
		sections: []fakeSection{
			{name: ".text", va: 0x1000, data: bytes.Repeat([]byte{0xcc}, 0x1234), chars: 0x60000020},
			{name: ".data", va: 0x3000, data: []byte("stub data"), chars: 0xc0000040},
		},
	}
}

func (f fakePE) bytes() []byte {
	le := binary.LittleEndian
	const lfanew = 0x40
	opt := lfanew + 4 + coffHeaderSize
	table := opt + 240
	b := make([]byte, f.sizeOfHeaders)
	copy(b, "MZ")
	le.PutUint32(b[dosLfanewOffset:], lfanew)
	copy(b[lfanew:], "PE\x00\x00")
	le.PutUint16(b[lfanew+4+coffMachine:], f.machine)
	le.PutUint16(b[lfanew+4+coffNumberOfSections:], uint16(len(f.sections)))
	le.PutUint16(b[lfanew+4+coffSizeOfOptHeader:], 240)
	le.PutUint16(b[opt+optMagic:], f.magic)
	le.PutUint32(b[opt+optSectionAlignment:], f.sectionAlign)
	le.PutUint32(b[opt+optFileAlignment:], f.fileAlign)
	le.PutUint32(b[opt+optSizeOfHeaders:], f.sizeOfHeaders)
	le.PutUint32(b[opt+optNumberOfRvaAndSizes:], 16)
	if f.signed {
		le.PutUint32(b[opt+optDataDirectories+dataDirSecurity*8:], 0x5000)
		le.PutUint32(b[opt+optDataDirectories+dataDirSecurity*8+4:], 0x100)
	}
	var end uint32
	for i, s := range f.sections {
		raw := s.raw
		if raw == 0 {
			raw = uint32(alignUp(uint64(len(b)), uint64(f.fileAlign)))
		}
		rawSize := uint32(alignUp(uint64(len(s.data)), uint64(f.fileAlign)))
		if grow := int(raw+rawSize) - len(b); grow > 0 {
			b = append(b, make([]byte, grow)...)
		}
		copy(b[raw:], s.data)
		h := b[table+i*sectionHdrSize:]
		copy(h[secName:secName+8], s.name)
		le.PutUint32(h[secVirtualSize:], uint32(len(s.data)))
		le.PutUint32(h[secVirtualAddress:], s.va)
		le.PutUint32(h[secSizeOfRawData:], rawSize)
		le.PutUint32(h[secPointerToRaw:], raw)
		le.PutUint32(h[secCharacteristics:], s.chars)
		end = max(end, s.va+uint32(len(s.data)))
	}
	le.PutUint32(b[opt+optSizeOfImage:], uint32(alignUp(uint64(end), uint64(f.sectionAlign))))
	return append(b, f.trailer...)
}

func fakeKernel(size int) []byte {
	k := defaultFake()
	k.sections = []fakeSection{{name: ".text", va: 0x1000, data: randomBytes(7, size), chars: 0x60000020}}
	return k.bytes()
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed)}).Read(b)
	return b
}

func testSections() Sections {
	return Sections{
		Linux:     fakeKernel(300_001),
		Initrd:    randomBytes(2, 123_457),
		Cmdline:   "console=ttyS0 roothash=" + strings.Repeat("ab", 32) + " ballast.slot=a",
		OSRelease: []byte("ID=ballast\nNAME=Ballast\nVERSION_ID=0.1\n"),
		Uname:     "6.1.0-50-cloud-amd64",
	}
}

func build(t *testing.T, stub []byte, s Sections) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := Build(&out, stub, s); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// checkImage verifies the output with debug/pe, independently of Build's own parser: the stub's
// sections are untouched, the new ones follow in order, aligned and without overlap, their
// contents round-trip, and the image-wide header fields agree with the sections.
func checkImage(t *testing.T, stub, out []byte, s Sections) {
	// What a stub has after its last section is dropped before the sections are appended.
	stub = trimmed(t, stub)
	t.Helper()
	orig, err := pe.NewFile(bytes.NewReader(stub))
	if err != nil {
		t.Fatal(err)
	}
	f, err := pe.NewFile(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("debug/pe cannot read the output: %v", err)
	}
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	ooh := orig.OptionalHeader.(*pe.OptionalHeader64)

	want := []struct {
		name string
		data []byte
	}{{".osrel", s.OSRelease}, {".cmdline", []byte(s.Cmdline)}, {".uname", []byte(s.Uname)},
		{".initrd", s.Initrd}, {".linux", s.Linux}}
	var wantNames []string
	for _, o := range orig.Sections {
		wantNames = append(wantNames, o.Name)
	}
	var wantData [][]byte
	for _, w := range want {
		if len(w.data) > 0 {
			wantNames = append(wantNames, w.name)
			wantData = append(wantData, w.data)
		}
	}
	var names []string
	for _, sec := range f.Sections {
		names = append(names, sec.Name)
	}
	if strings.Join(names, " ") != strings.Join(wantNames, " ") {
		t.Fatalf("sections %v, want %v", names, wantNames)
	}

	for i, o := range orig.Sections {
		if f.Sections[i].SectionHeader != o.SectionHeader {
			t.Errorf("stub section %s header changed: %+v, was %+v", o.Name, f.Sections[i].SectionHeader, o.SectionHeader)
		}
	}
	var prevEnd uint32
	for _, sec := range f.Sections {
		prevEnd = max(prevEnd, sec.VirtualAddress+max(sec.VirtualSize, sec.Size))
		if sec.VirtualAddress+max(sec.VirtualSize, sec.Size) > oh.SizeOfImage {
			t.Errorf("section %s ends at %#x, past SizeOfImage %#x", sec.Name, sec.VirtualAddress+sec.VirtualSize, oh.SizeOfImage)
		}
	}
	lastVA, lastRaw := uint32(0), uint32(0)
	for i, sec := range f.Sections[len(orig.Sections):] {
		if sec.VirtualSize != uint32(len(wantData[i])) {
			t.Errorf("%s: VirtualSize %d, want %d", sec.Name, sec.VirtualSize, len(wantData[i]))
		}
		if sec.VirtualAddress%oh.SectionAlignment != 0 || sec.Offset%oh.FileAlignment != 0 || sec.Size%oh.FileAlignment != 0 {
			t.Errorf("%s: VA %#x, file offset %#x, raw size %#x not aligned", sec.Name, sec.VirtualAddress, sec.Offset, sec.Size)
		}
		if i == 0 {
			if sec.VirtualAddress < alignUp32(ooh.SizeOfImage, oh.SectionAlignment) || sec.Offset < uint32(len(stub)) {
				t.Errorf("%s at VA %#x, offset %#x overlaps the stub (SizeOfImage %#x, %d bytes)",
					sec.Name, sec.VirtualAddress, sec.Offset, ooh.SizeOfImage, len(stub))
			}
		} else if sec.VirtualAddress < lastVA || sec.Offset < lastRaw {
			t.Errorf("%s at VA %#x, offset %#x overlaps the section before (ends %#x, %#x)",
				sec.Name, sec.VirtualAddress, sec.Offset, lastVA, lastRaw)
		}
		lastVA, lastRaw = sec.VirtualAddress+sec.VirtualSize, sec.Offset+sec.Size
		raw, err := sec.Data()
		if err != nil {
			t.Fatalf("%s: %v", sec.Name, err)
		}
		if !bytes.Equal(raw[:sec.VirtualSize], wantData[i]) || !bytes.Equal(raw[sec.VirtualSize:], make([]byte, len(raw)-int(sec.VirtualSize))) {
			t.Errorf("%s: contents do not round-trip", sec.Name)
		}
	}
	if lastRaw != uint32(len(out)) {
		t.Errorf("file is %d bytes, last section ends at %d", len(out), lastRaw)
	}
	if oh.SizeOfImage != alignUp32(lastVA, oh.SectionAlignment) {
		t.Errorf("SizeOfImage %#x, want %#x", oh.SizeOfImage, alignUp32(lastVA, oh.SectionAlignment))
	}
	tableEnd := binary.LittleEndian.Uint32(out[dosLfanewOffset:]) + 4 + coffHeaderSize +
		uint32(f.FileHeader.SizeOfOptionalHeader) + uint32(len(f.Sections))*sectionHdrSize
	if oh.SizeOfHeaders < tableEnd || oh.SizeOfHeaders%oh.FileAlignment != 0 {
		t.Errorf("SizeOfHeaders %#x, section table ends at %#x", oh.SizeOfHeaders, tableEnd)
	}
	if got := oh.SizeOfInitializedData + oh.SizeOfCode - ooh.SizeOfInitializedData - ooh.SizeOfCode; got != lastRaw-alignUp32(uint32(len(stub)), oh.FileAlignment) {
		t.Errorf("SizeOfCode+SizeOfInitializedData grew by %#x, the new sections take %#x", got, lastRaw-uint32(len(stub)))
	}
	if f.FileHeader.TimeDateStamp != orig.FileHeader.TimeDateStamp || oh.AddressOfEntryPoint != ooh.AddressOfEntryPoint {
		t.Error("timestamp or entry point changed")
	}
	zeroed := bytes.Clone(out)
	binary.LittleEndian.PutUint32(zeroed[checksumOffset(t, out):], 0)
	if oh.CheckSum != peChecksum(zeroed) {
		t.Errorf("CheckSum %#x, want %#x", oh.CheckSum, peChecksum(zeroed))
	}
}

func checksumOffset(t *testing.T, b []byte) int {
	t.Helper()
	img, err := parsePE(b, "image")
	if err != nil {
		t.Fatal(err)
	}
	return img.opt + optCheckSum
}

func alignUp32(v, a uint32) uint32 { return uint32(alignUp(uint64(v), uint64(a))) }

func TestBuildFake(t *testing.T) {
	trailing := defaultFake()
	trailing.trailer = []byte("symbol table, odd length")
	full := testSections()
	tests := []struct {
		name string
		stub fakePE
		s    Sections
	}{
		{"all sections", defaultFake(), full},
		{"kernel only", defaultFake(), Sections{Linux: full.Linux}},
		{"no uname", defaultFake(), Sections{Linux: full.Linux, Initrd: full.Initrd, Cmdline: full.Cmdline, OSRelease: full.OSRelease}},
		{"trailing data", trailing, full},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := tt.stub.bytes()
			out := build(t, stub, tt.s)
			checkImage(t, stub, out, tt.s)
			noGaps(t, out)
		})
	}
}

func TestBuildStub(t *testing.T) {
	stub := realStub(t)
	s := testSections()
	out := build(t, stub, s)
	checkImage(t, stub, out, s)
	if again := build(t, stub, s); !bytes.Equal(out, again) {
		t.Error("two builds from the same inputs differ")
	}

	// Nothing but the patched header fields and the new section headers may change in the stub
	// (once its symbol table is gone).
	stub = trimmed(t, stub)
	img, err := parsePE(stub, "stub")
	if err != nil {
		t.Fatal(err)
	}
	masked := func(b []byte) []byte {
		b = bytes.Clone(b[:len(stub)])
		for _, r := range [][2]int{
			{img.coff + coffNumberOfSections, 2}, {img.opt + optSizeOfCode, 8}, {img.opt + optSizeOfImage, 12},
			{img.sectionTable + img.numSections*sectionHdrSize, 5 * sectionHdrSize},
		} {
			clear(b[r[0] : r[0]+r[1]])
		}
		return b
	}
	if !bytes.Equal(masked(out), masked(stub)) {
		t.Error("output changes stub bytes beyond the header fields Build owns")
	}

	noGaps(t, out)
}

// noGaps checks that the image's sections follow each other in the file without gaps, to its
// end: Authenticode verifiers disagree about gaps, and the firmware refused a signed UKI that had
// one.
func noGaps(t *testing.T, out []byte) {
	t.Helper()
	f, err := pe.NewFile(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if f.FileHeader.PointerToSymbolTable != 0 || f.FileHeader.NumberOfSymbols != 0 {
		t.Errorf("symbol table still referenced: %+v", f.FileHeader)
	}
	secs := slices.Clone(f.Sections)
	slices.SortFunc(secs, func(a, b *pe.Section) int { return int(a.Offset) - int(b.Offset) })
	for i := 1; i < len(secs); i++ {
		if end := secs[i-1].Offset + secs[i-1].Size; end != secs[i].Offset {
			t.Errorf("gap between %s (ends %#x) and %s (starts %#x)", secs[i-1].Name, end, secs[i].Name, secs[i].Offset)
		}
	}
	if last := secs[len(secs)-1]; int(last.Offset+last.Size) != len(out) {
		t.Errorf("%d bytes after the last section %s", len(out)-int(last.Offset+last.Size), last.Name)
	}
}

// TestBuildStubARM64 builds on the arm64 stub images carry, which ends with bytes no header
// describes: they go, and the sections follow each other without a gap.
func TestBuildStubARM64(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lock := filepath.Join(testutil.RepoRoot(t), "packages", "debian.lock")
	dir, err := debian.UnpackPinned(ctx, lock, stubPackage, contract.ARM64, "")
	if err != nil {
		t.Fatalf("arm64 systemd-stub: %v", err)
	}
	stub, err := os.ReadFile(filepath.Join(dir, "usr/lib/systemd/boot/efi/linuxaa64.efi.stub"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := parsePE(stub, "stub")
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(stub)) <= img.rawEnd {
		t.Logf("the arm64 stub has nothing after its sections now (%d bytes)", len(stub))
	}
	kf := defaultFake()
	kf.machine = 0xaa64
	s := testSections()
	s.Linux = kf.bytes()
	out := build(t, stub, s)
	noGaps(t, out)
}

// TestObjdump cross-checks the section table with binutils' reading of the image.
func TestObjdump(t *testing.T) {
	objdump := testutil.Tool(t, "objdump", "binutils")
	stub := realStub(t)
	s := testSections()
	path := filepath.Join(t.TempDir(), "uki.efi")
	if err := os.WriteFile(path, build(t, stub, s), 0o644); err != nil {
		t.Fatal(err)
	}
	out := testutil.Run(t, objdump, "-h", path)
	if !strings.Contains(out, "file format pei-x86-64") {
		t.Fatalf("objdump does not see a PE image:\n%s", out)
	}
	f, err := pe.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	re := regexp.MustCompile(`(?m)^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)`)
	rows := re.FindAllStringSubmatch(out, -1)
	if len(rows) != len(f.Sections) {
		t.Fatalf("objdump lists %d sections, debug/pe %d:\n%s", len(rows), len(f.Sections), out)
	}
	for i, r := range rows {
		sec := f.Sections[i]
		size, _ := strconv.ParseUint(r[2], 16, 32)
		vma, _ := strconv.ParseUint(r[3], 16, 64)
		off, _ := strconv.ParseUint(r[4], 16, 32)
		if r[1] != sec.Name || uint32(size) != min(sec.VirtualSize, sec.Size) || uint32(vma) != sec.VirtualAddress || uint32(off) != sec.Offset {
			t.Errorf("objdump: %s size %s vma %s off %s; debug/pe: %s size %#x va %#x off %#x",
				r[1], r[2], r[3], r[4], sec.Name, sec.VirtualSize, sec.VirtualAddress, sec.Offset)
		}
	}
}

// TestOsslsigncodeChecksum compares the PE checksum with osslsigncode's own calculation.
func TestOsslsigncodeChecksum(t *testing.T) {
	osslsigncode := testutil.Tool(t, "osslsigncode", "osslsigncode")
	stub := realStub(t)
	path := filepath.Join(t.TempDir(), "uki.efi")
	if err := os.WriteFile(path, build(t, stub, testSections()), 0o644); err != nil {
		t.Fatal(err)
	}
	// verify fails (the image is unsigned) but still reports the checksum: one line when the stored
	// value is what it calculates, two when they differ.
	out, _ := exec.Command(osslsigncode, "verify", "-in", path).CombinedOutput()
	if m := regexp.MustCompile(`Calculated PE checksum\s*:\s*([0-9A-F]+)`).FindStringSubmatch(string(out)); m != nil {
		t.Fatalf("osslsigncode calculates PE checksum %s, which is not what Build stored:\n%s", m[1], out)
	}
	if !regexp.MustCompile(`(?m)^PE checksum\s*:\s*[0-9A-F]+$`).MatchString(string(out)) {
		t.Fatalf("no PE checksum in osslsigncode output:\n%s", out)
	}
}

func TestChecksum(t *testing.T) {
	data := randomBytes(3, 1001)
	whole := peChecksum(data)
	for _, split := range []int{0, 1, 2, 500, 999, 1000, 1001} {
		if got := peChecksum(data[:split], data[split:]); got != whole {
			t.Errorf("split at %d: %#x, whole %#x", split, got, whole)
		}
	}
	if got := peChecksum(data[:3], data[3:4], data[4:7], nil, data[7:]); got != whole {
		t.Errorf("odd pieces: %#x, whole %#x", got, whole)
	}
	tests := []struct {
		in   []byte
		want uint32
	}{
		{nil, 0},
		{[]byte{1}, 1 + 1},
		{[]byte{0x34, 0x12}, 0x1234 + 2},
		{[]byte{0xff, 0xff, 0x02, 0x00}, 0x0002 + 4}, // 0xffff+2 carries round to 2
	}
	for _, tt := range tests {
		if got := peChecksum(tt.in); got != tt.want {
			t.Errorf("peChecksum(%x) = %#x, want %#x", tt.in, got, tt.want)
		}
	}
}

// The stub's own checksum was written by binutils when systemd was built; recomputing it checks
// the algorithm against an independent implementation, odd file length included.
func TestChecksumMatchesBinutils(t *testing.T) {
	stub := realStub(t)
	off := checksumOffset(t, stub)
	want := binary.LittleEndian.Uint32(stub[off:])
	if want == 0 {
		t.Fatal("the stub has no checksum to check against")
	}
	b := bytes.Clone(stub)
	clear(b[off : off+4])
	if got := peChecksum(b); got != want {
		t.Errorf("checksum of the stub %#x, binutils wrote %#x", got, want)
	}
}

func TestBuildErrors(t *testing.T) {
	mod := func(f func(*fakePE)) []byte {
		p := defaultFake()
		f(&p)
		return p.bytes()
	}
	good := defaultFake().bytes()
	s := testSections()
	with := func(f func(*Sections)) Sections {
		c := s
		f(&c)
		return c
	}
	tests := []struct {
		name string
		stub []byte
		s    Sections
		want string
	}{
		{"not PE", []byte("#!/bin/sh\n" + strings.Repeat("x", 100)), s, "stub: not a PE image"},
		{"truncated", good[:0x60], s, "stub: optional header of 240 bytes is truncated"},
		{"bad e_lfanew", func() []byte { b := bytes.Clone(good); b[dosLfanewOffset+1] = 0x10; return b }(), s, "stub: no PE signature at offset 0x1040"},
		{"PE32", mod(func(p *fakePE) { p.magic = 0x10b }), s, "want PE32+"},
		{"signed", mod(func(p *fakePE) { p.signed = true }), s, "Authenticode"},
		{"unaligned", mod(func(p *fakePE) { p.sections[1].raw = 0x1700 }), s, "not aligned to the file alignment"},
		{"no header room", mod(func(p *fakePE) {
			for i := range 12 {
				p.sections = append(p.sections, fakeSection{name: ".x" + strconv.Itoa(i), va: 0x10000 + uint32(i)*0x1000, data: []byte{1}})
			}
		}), s, "room for 17 section headers before its first section data at 0x400; it has 14 and 5 more are needed"},
		{"header gap used", func() []byte { b := bytes.Clone(good); b[0x200] = 1; return b }(), s, "stub has data at 0x200"},
		{"no kernel", good, with(func(s *Sections) { s.Linux = nil }), "no kernel"},
		{"kernel not PE", good, with(func(s *Sections) { s.Linux = []byte("\x7fELF vmlinux, not a bzImage...............................") }), "kernel: not a PE image"},
		{"kernel for arm64", good, with(func(s *Sections) {
			k := defaultFake()
			k.machine = 0xaa64
			s.Linux = k.bytes()
		}), "kernel is for PE machine 0xaa64, stub for 0x8664"},
		{"newline in cmdline", good, with(func(s *Sections) { s.Cmdline = "console=ttyS0\n" }), "command line: byte 0x0a at offset 13"},
		{"NUL in cmdline", good, with(func(s *Sections) { s.Cmdline = "a\x00b" }), "command line: byte 0x00 at offset 1"},
		{"non-ASCII uname", good, with(func(s *Sections) { s.Uname = "6.1-é" }), "uname: byte 0xc3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Build(&out, tt.stub, tt.s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("wrote %d bytes despite the error", out.Len())
			}
		})
	}
}

func trimmed(t *testing.T, stub []byte) []byte {
	t.Helper()
	img, err := parsePE(stub, "stub")
	if err != nil {
		t.Fatal(err)
	}
	return dropTrailer(stub, img)
}

// TestARM64StubNopPadding: the arm64 linker pads the header space after the section table with
// NOP instructions. They are padding, and the new section headers written over them carry none
// of their bytes (debug/pe would read the NOPs as relocations); other bytes there are refused.
func TestARM64StubNopPadding(t *testing.T) {
	f := defaultFake()
	f.machine = 0xaa64
	stub := f.bytes()
	tableEnd := 0x40 + 4 + coffHeaderSize + 240 + len(f.sections)*sectionHdrSize
	for i := tableEnd; i+4 <= int(f.sizeOfHeaders); i += 4 {
		copy(stub[i:], arm64Nop)
	}
	kf := defaultFake()
	kf.machine = 0xaa64
	secs := Sections{Linux: kf.bytes(), Initrd: []byte("initrd"), Cmdline: "quiet", OSRelease: []byte("ID=ballast\n"), Uname: "6.1.0-50-cloud-arm64"}
	var out bytes.Buffer
	if err := Build(&out, stub, secs); err != nil {
		t.Fatalf("arm64 stub with NOP padding: %v", err)
	}
	img, err := pe.NewFile(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatalf("debug/pe cannot read the UKI: %v", err)
	}
	for _, s := range img.Sections {
		if s.NumberOfRelocations != 0 || s.NumberOfLineNumbers != 0 || s.PointerToRelocations != 0 {
			t.Errorf("section %s carries padding in its header: %+v", s.Name, s.SectionHeader)
		}
	}
	// A NOP on an amd64 stub, or anything else on an arm64 one, is data.
	for _, tc := range []struct {
		machine uint16
		word    []byte
	}{{0x8664, arm64Nop}, {0xaa64, []byte{1, 2, 3, 4}}} {
		g := defaultFake()
		g.machine = tc.machine
		b := g.bytes()
		copy(b[tableEnd:], tc.word)
		k := defaultFake()
		k.machine = tc.machine
		s := secs
		s.Linux = k.bytes()
		if err := Build(new(bytes.Buffer), b, s); err == nil || !strings.Contains(err.Error(), "stub has data at") {
			t.Errorf("machine %#x, word % x after the table: %v", tc.machine, tc.word, err)
		}
	}
}
