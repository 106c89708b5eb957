package format

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVMDKStreamLayout checks what a streaming reader relies on and QEMU
// does not check: the header points to a footer, the footer and the
// end-of-stream marker fill the last three sectors, and every grain table
// and the directory sit behind their markers.
func TestVMDKStreamLayout(t *testing.T) {
	raw := makeDisk(t, 64*mib, testPatches(64*mib))
	out := filepath.Join(t.TempDir(), "disk.vmdk")
	if err := Convert(context.Background(), raw, out, VMDK, testOpts); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if len(img)%sectorSize != 0 {
		t.Fatalf("size %d is not whole sectors", len(img))
	}
	sector := func(n int64) []byte { return img[n*sectorSize : (n+1)*sectorSize] }
	last := int64(len(img)/sectorSize) - 1
	head, footer := sector(0), sector(last-1)
	if !bytes.Equal(sector(last), make([]byte, sectorSize)) {
		t.Error("last sector is not the end-of-stream marker")
	}
	if m := sector(last - 2); le.Uint64(m) != 1 || le.Uint32(m[8:]) != 0 || le.Uint32(m[12:]) != vmdkMarkerFooter {
		t.Errorf("no footer marker before the footer: % x", m[:16])
	}
	if le.Uint64(head[56:]) != vmdkGDAtEnd {
		t.Errorf("header gdOffset %#x, want GD_AT_END", le.Uint64(head[56:]))
	}
	if !bytes.Equal(head[:56], footer[:56]) || !bytes.Equal(head[64:], footer[64:]) {
		t.Error("footer differs from the header beyond gdOffset")
	}
	if le.Uint32(head[0:]) != vmdkMagic || le.Uint32(head[4:]) != 3 || le.Uint32(head[8:]) != 0x30001 || le.Uint16(head[77:]) != 1 {
		t.Errorf("header % x", head[:80])
	}
	if desc := string(sector(1)); !strings.Contains(desc, `createType="streamOptimized"`) || !strings.Contains(desc, `RW 131072 SPARSE "disk.vmdk"`) {
		t.Errorf("descriptor:\n%s", desc)
	}

	gd := int64(le.Uint64(footer[56:]))
	if m := sector(gd - 1); le.Uint64(m) != 1 || le.Uint32(m[12:]) != vmdkMarkerGD {
		t.Errorf("no grain directory marker before sector %d", gd)
	}
	tables := 0
	for i := range 2 { // 64 MiB: two grain tables
		gt := int64(le.Uint32(img[gd*sectorSize+int64(i)*4:]))
		if gt == 0 {
			continue
		}
		tables++
		if m := sector(gt - 1); le.Uint64(m) != vmdkGTSectors || le.Uint32(m[12:]) != vmdkMarkerGT {
			t.Errorf("no grain table marker before sector %d", gt)
		}
		for j := range int64(vmdkGTEntries) {
			g := int64(le.Uint32(img[gt*sectorSize+j*4:]))
			if g == 0 {
				continue
			}
			if lba := le.Uint64(sector(g)); lba != uint64((int64(i)*vmdkGTEntries+j)*vmdkGrainSectors) {
				t.Errorf("grain %d/%d: marker says LBA %d", i, j, lba)
			}
		}
	}
	if tables != 2 {
		t.Errorf("%d grain tables, want 2", tables)
	}
}

func TestVMDKDescriptorRefusesBadNames(t *testing.T) {
	for _, name := range []string{"", `a"b.vmdk`, "a\nb.vmdk"} {
		if _, err := vmdkDescriptor(mib, name, [16]byte{}); err == nil {
			t.Errorf("vmdkDescriptor(%q) did not fail", name)
		}
	}
}
