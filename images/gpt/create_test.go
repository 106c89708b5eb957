package gpt

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

func mustGUID(t *testing.T, s string) GUID {
	t.Helper()
	g, err := ParseGUID(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestNewAndSetPartition(t *testing.T) {
	const sectors = 64 << 11 // 64 MiB
	tbl, err := New(512, sectors, mustGUID(t, "11111111-2222-4333-8444-555555555555"))
	if err != nil {
		t.Fatal(err)
	}
	if h := tbl.Header; h.FirstUsableLBA != 34 || h.LastUsableLBA != sectors-34 || h.AlternateLBA != sectors-1 || h.EntriesLBA != 2 {
		t.Fatalf("header %+v", h)
	}
	linux := mustGUID(t, "0fc63daf-8483-4772-8e79-3d69d8477de4")
	good := Partition{Number: 1, Type: linux, ID: mustGUID(t, "aaaaaaaa-2222-4333-8444-555555555555"), FirstLBA: 2048, LastLBA: 4095, Name: "data", Attributes: 1 << 60}
	if err := tbl.SetPartition(good); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		p    Partition
		want string
	}{
		{"number 0", Partition{Number: 0, Type: linux, FirstLBA: 5000, LastLBA: 6000}, "out of range"},
		{"number 129", Partition{Number: 129, Type: linux, FirstLBA: 5000, LastLBA: 6000}, "out of range"},
		{"unused type", Partition{Number: 2, FirstLBA: 5000, LastLBA: 6000}, "zero type GUID"},
		{"before first usable", Partition{Number: 2, Type: linux, FirstLBA: 10, LastLBA: 6000}, "outside the usable"},
		{"past last usable", Partition{Number: 2, Type: linux, FirstLBA: 5000, LastLBA: sectors - 2}, "outside the usable"},
		{"overlap", Partition{Number: 2, Type: linux, FirstLBA: 4000, LastLBA: 6000}, "overlaps partition 1"},
		{"long name", Partition{Number: 2, Type: linux, FirstLBA: 5000, LastLBA: 6000, Name: strings.Repeat("x", 37)}, "longer than 36"},
	}
	for _, tt := range bad {
		if err := tbl.SetPartition(tt.p); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	ps := tbl.Partitions()
	if len(ps) != 1 || ps[0] != good {
		t.Errorf("partitions %+v, want only %+v", ps, good)
	}
}

// A disk written by WriteNew reads back from each copy, and sgdisk finds no problem with it.
func TestWriteNew(t *testing.T) {
	const sectors = 64 << 11
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(sectors * 512)
	tbl, _ := New(512, sectors, mustGUID(t, "11111111-2222-4333-8444-555555555555"))
	esp := mustGUID(t, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
	for i, r := range [][2]uint64{{2048, 4095}, {4096, sectors - 2049}} {
		p := Partition{Number: i + 1, Type: esp, ID: mustGUID(t, "aaaaaaaa-2222-4333-8444-55555555555"+string(rune('0'+i))),
			FirstLBA: r[0], LastLBA: r[1], Name: "p" + string(rune('0'+i))}
		if err := tbl.SetPartition(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := tbl.WriteNew(f); err != nil {
		t.Fatal(err)
	}
	mbr := make([]byte, 512)
	f.ReadAt(mbr, 0)
	want := []byte{0x00, 0x00, 0x02, 0x00, 0xEE, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0}
	want = binary.LittleEndian.AppendUint32(want, sectors-1)
	if !bytes.Equal(mbr[446:462], want) || mbr[510] != 0x55 || mbr[511] != 0xAA {
		t.Errorf("protective MBR entry % x, want % x", mbr[446:462], want)
	}
	p, err := ReadPrimary(f, 512)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ReadBackup(f, 512, sectors*512)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Partitions()) != 2 || len(b.Partitions()) != 2 || p.Partitions()[1] != b.Partitions()[1] {
		t.Errorf("primary %+v, backup %+v", p.Partitions(), b.Partitions())
	}
	sgdisk := testutil.Tool(t, "sgdisk", "gdisk")
	if out := testutil.Run(t, sgdisk, "-v", path); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", out)
	}
}

func TestFixProtectiveMBR(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	f, _ := os.Create(path)
	defer f.Close()
	f.Truncate(1 << 20)
	f.WriteAt(ProtectiveMBR(2048), 0)
	if err := FixProtectiveMBR(f, 8191); err != nil {
		t.Fatal(err)
	}
	mbr := make([]byte, 512)
	f.ReadAt(mbr, 0)
	if got := binary.LittleEndian.Uint32(mbr[458:]); got != 8191 {
		t.Errorf("size field %d, want 8191", got)
	}
	if err := FixProtectiveMBR(f, 1<<33); err != nil {
		t.Fatal(err)
	}
	f.ReadAt(mbr, 0)
	if got := binary.LittleEndian.Uint32(mbr[458:]); got != 0xffffffff {
		t.Errorf("size field %#x, want capped at 0xffffffff", got)
	}
	// A hybrid MBR (another partition beside 0xEE) is not ours to touch.
	mbr[462+4] = 0x0c
	f.WriteAt(mbr, 0)
	if err := FixProtectiveMBR(f, 4095); err != nil {
		t.Fatal(err)
	}
	after := make([]byte, 512)
	f.ReadAt(after, 0)
	if !bytes.Equal(after, mbr) {
		t.Error("a hybrid MBR was rewritten")
	}
}
