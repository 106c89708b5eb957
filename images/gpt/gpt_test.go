package gpt

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

func TestGUIDRoundTrip(t *testing.T) {
	tests := []struct {
		text string
		disk []byte
	}{
		// EFI System Partition type, as laid out on disk.
		{"c12a7328-f81f-11d2-ba4b-00a0c93ec93b", []byte{0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b}},
		// UAPI root x86-64; upper case input must parse to the same bytes.
		{"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", []byte{0xe3, 0xbc, 0x68, 0x4f, 0xcd, 0xe8, 0xb1, 0x4d, 0x96, 0xe7, 0xfb, 0xca, 0xf9, 0x84, 0xb7, 0x09}},
	}
	for _, tc := range tests {
		g, err := ParseGUID(tc.text)
		if err != nil {
			t.Fatalf("ParseGUID(%q): %v", tc.text, err)
		}
		if !bytes.Equal(g[:], tc.disk) {
			t.Errorf("ParseGUID(%q) = % x, want % x", tc.text, g[:], tc.disk)
		}
		if got := g.String(); got != strings.ToLower(tc.text) {
			t.Errorf("String() = %q, want %q", got, strings.ToLower(tc.text))
		}
	}
	for _, bad := range []string{"", "c12a7328f81f11d2ba4b00a0c93ec93b", "c12a7328-f81f-11d2-ba4b-00a0c93ec93g", "c12a7328-f81f-11d2-ba4b_00a0c93ec93b"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("ParseGUID(%q) succeeded, want error", bad)
		}
	}
}

// sgdiskImage makes a disk image with sgdisk so the reader is checked against an independent writer.
func sgdiskImage(t *testing.T, size string, args ...string) string {
	t.Helper()
	sgdisk := testutil.Tool(t, "sgdisk", "gdisk")
	img := filepath.Join(t.TempDir(), "disk.img")
	testutil.Run(t, "truncate", "-s", size, img)
	testutil.Run(t, sgdisk, append(args, img)...)
	return img
}

const (
	espType  = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	rootType = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
	dataType = "0fc63daf-8483-4772-8e79-3d69e4772e4e"
	espID    = "11111111-2222-4333-8444-555555555555"
	rootID   = "6e2d0e3a-2f44-4a6c-9d0b-4a1f0c6d7e81"
	dataID   = "a0b1c2d3-e4f5-4a6b-8c7d-8e9fa0b1c2d3"
)

func TestReadSgdiskImage(t *testing.T) {
	t.Parallel() // sgdisk sleeps a second after every write
	img := sgdiskImage(t, "64M",
		"-n1:2048:+8M", "-t1:"+espType, "-u1:"+espID, "-c1:esp",
		"-n2:0:+16M", "-t2:"+rootType, "-u2:"+rootID, "-c2:root-a",
		// entry 3 left empty on purpose: numbering must follow the entry index, not the count
		"-n4:0:+4M", "-t4:"+dataType, "-u4:"+dataID, "-c4:dätä")
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()

	want := []struct {
		num        int
		typ, id    string
		name       string
		first, end uint64
	}{
		{1, espType, espID, "esp", 2048, 2048 + 8*2048 - 1},
		{2, rootType, rootID, "root-a", 2048 + 8*2048, 2048 + 24*2048 - 1},
		{4, dataType, dataID, "dätä", 2048 + 24*2048, 2048 + 28*2048 - 1},
	}
	for _, copyName := range []string{"primary", "backup"} {
		var tbl *Table
		if copyName == "primary" {
			tbl, err = ReadPrimary(f, 512)
		} else {
			tbl, err = ReadBackup(f, 512, fi.Size())
		}
		if err != nil {
			t.Fatalf("%s: %v", copyName, err)
		}
		ps := tbl.Partitions()
		if len(ps) != len(want) {
			t.Fatalf("%s: got %d partitions, want %d: %+v", copyName, len(ps), len(want), ps)
		}
		for i, w := range want {
			p := ps[i]
			if p.Number != w.num || p.Type.String() != w.typ || p.ID.String() != w.id || p.Name != w.name || p.FirstLBA != w.first || p.LastLBA != w.end {
				t.Errorf("%s: partition %d = {%d %s %s %q %d-%d}, want %+v", copyName, i, p.Number, p.Type, p.ID, p.Name, p.FirstLBA, p.LastLBA, w)
			}
		}
	}
}

// TestMarshalMatchesDisk checks that re-serialising what was read reproduces sgdisk's bytes exactly,
// for the primary header and for the backup derived from it.
func TestMarshalMatchesDisk(t *testing.T) {
	t.Parallel() // sgdisk sleeps a second after every write
	img := sgdiskImage(t, "32M", "-n1:0:+4M", "-n2:0:0")
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(data)
	p, err := ReadPrimary(r, 512)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.MarshalHeader(); !bytes.Equal(got, data[512:1024]) {
		t.Errorf("primary header differs from disk:\n got % x\nwant % x", got[:92], data[512:604])
	}
	b := p.Backup()
	last := int64(len(data)) - 512
	if got := b.MarshalHeader(); !bytes.Equal(got, data[last:]) {
		t.Errorf("derived backup header differs from disk:\n got % x\nwant % x", got[:92], data[last:last+92])
	}
	if b.Header.EntriesLBA != uint64(len(data)/512-33) {
		t.Errorf("backup entries at LBA %d, want %d", b.Header.EntriesLBA, len(data)/512-33)
	}
}

func TestReadRejectsDamage(t *testing.T) {
	t.Parallel() // sgdisk sleeps a second after every write
	img := sgdiskImage(t, "16M", "-n1:0:0")
	clean, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		damage  func(b []byte)
		wantErr string
	}{
		{"no signature", func(b []byte) { copy(b[512:], "NOT PART") }, "no GPT signature"},
		{"header crc", func(b []byte) { b[512+48]++ }, "header CRC mismatch"},
		{"entries crc", func(b []byte) { b[1024+60]++ }, "entry array CRC mismatch"},
		{"entry size", func(b []byte) { b[512+84] = 100; fixHeaderCRC(b[512:604]) }, "invalid entry size"},
		{"wrong my_lba", func(b []byte) { b[512+24] = 7; fixHeaderCRC(b[512:604]) }, "claims to be at LBA 7"},
		{"huge array", func(b []byte) { b[512+82] = 0xff; fixHeaderCRC(b[512:604]) }, "implausibly large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(clean)
			tc.damage(b)
			_, err := ReadPrimary(bytes.NewReader(b), 512)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func fixHeaderCRC(h []byte) {
	c := headerCRC(h)
	h[16], h[17], h[18], h[19] = byte(c), byte(c>>8), byte(c>>16), byte(c>>24)
}

func TestSetLastLBA(t *testing.T) {
	t.Parallel() // sgdisk sleeps a second after every write
	img := sgdiskImage(t, "16M", "-n1:0:+4M", "-n2:0:+4M")
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tbl, err := ReadPrimary(f, 512)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n       int
		last    uint64
		wantErr string
	}{
		{0, 100, "out of range"},
		{129, 100, "out of range"},
		{3, 100, "unused"},
		{2, 10, "before first LBA"},
	} {
		if err := tbl.SetLastLBA(tc.n, tc.last); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("SetLastLBA(%d, %d) = %v, want %q", tc.n, tc.last, err, tc.wantErr)
		}
	}
	end := tbl.Header.LastUsableLBA
	if err := tbl.SetLastLBA(2, end); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Backup().Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := testutil.Run(t, "sgdisk", "-v", img)
	if !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v after rewrite:\n%s", out)
	}
	if out := testutil.Run(t, "sgdisk", "-i", "2", img); !strings.Contains(out, "Last sector: "+strconv.FormatUint(end, 10)+" ") {
		t.Errorf("sgdisk -i 2 after rewrite:\n%s", out)
	}
}
