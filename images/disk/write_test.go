package disk_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/disk"
	"github.com/ballast-os/ballast/images/fat"
	"github.com/ballast-os/ballast/images/gpt"
	"github.com/ballast-os/ballast/tests/testutil"
)

const mib = 1 << 20

var rootHash, _ = hex.DecodeString("0123456789abcdef0123456789abcdeffedcba9876543210fedcba9876543210")

func pseudoRandom(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, ^seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func layout(t *testing.T, arch contract.Arch) disk.Layout {
	t.Helper()
	l, err := disk.Plan(arch, disk.Sizes{ESP: 64 * mib, Root: 8 * mib, Verity: 1 * mib, Data: 16 * mib}, "qemu", rootHash)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var espFiles = []fat.File{
	{Path: "EFI/BOOT/BOOTX64.EFI", Data: pseudoRandom(1, 300_000)},
	{Path: "loader/loader.conf", Data: []byte("timeout 0\n")},
	{Path: "EFI/Linux/ballast-1-a-0.1.0.efi", Data: pseudoRandom(3, 200_000)},
}

// rootContent has an all-zero stretch in the middle so the sparse copy is
// exercised, and is shorter than its partition.
func rootContent() []byte {
	b := pseudoRandom(2, 3*mib)
	clear(b[mib : 2*mib+100])
	return b
}

// contents fills the ESP with a FAT32 volume written straight into its region
// and the other partitions from readers.
func contents() map[contract.PartitionName]disk.Content {
	return map[contract.PartitionName]disk.Content{
		contract.PartESP: func(w io.WriterAt, size int64) error {
			return fat.Write(w, size, fat.Options{Label: "ESP", VolumeID: 0xBA11A57, Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), HiddenSectors: 2048}, espFiles)
		},
		contract.PartRootA:   disk.FromReader(bytes.NewReader(rootContent())),
		contract.PartVerityA: disk.FromReader(bytes.NewReader(pseudoRandom(3, 4096+333))),
		contract.PartData:    disk.FromReader(strings.NewReader("data partition")),
	}
}

func writeImage(t *testing.T, arch contract.Arch) (string, disk.Layout) {
	t.Helper()
	l := layout(t, arch)
	path := filepath.Join(t.TempDir(), "disk.raw")
	if err := disk.Write(path, l, contents()); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return path, l
}

func TestWriteContentRoundTrip(t *testing.T) {
	path, l := writeImage(t, contract.AMD64)
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(img)) != l.Size {
		t.Fatalf("image is %d bytes, want %d", len(img), l.Size)
	}
	// Protective MBR: one 0xEE entry from LBA 1 over the whole disk, CHS as UEFI asks.
	mbr := []byte{0x00, 0x00, 0x02, 0x00, 0xEE, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0}
	mbr = binary.LittleEndian.AppendUint32(mbr, uint32(l.Size/512-1))
	if !bytes.Equal(img[446:462], mbr) || img[510] != 0x55 || img[511] != 0xAA {
		t.Errorf("protective MBR entry = % x, want % x", img[446:462], mbr)
	}

	want := map[contract.PartitionName][]byte{
		contract.PartRootA:   rootContent(),
		contract.PartVerityA: pseudoRandom(3, 4096+333),
		contract.PartData:    []byte("data partition"),
	}
	for _, p := range l.Partitions {
		region := img[p.Offset : p.Offset+p.Size]
		w := want[p.Name]
		if !bytes.Equal(region[:len(w)], w) {
			t.Errorf("partition %s: content at offset %d differs", p.Name, p.Offset)
		}
		if p.Name != contract.PartESP && bytes.IndexFunc(region[len(w):], func(r rune) bool { return r != 0 }) >= 0 {
			t.Errorf("partition %s: bytes after the content are not zero", p.Name)
		}
	}

	// The image is sparse: the untouched partitions and zero runs take no space.
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if used := st.Blocks * 512; used > l.Size/4 {
		t.Errorf("image uses %d bytes on disk for %d apparent; expected it sparse", used, l.Size)
	}

	// The GPT reads back, from the primary and from the backup alone.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	primary, err := gpt.ReadPrimary(f, 512)
	if err != nil {
		t.Fatal(err)
	}
	backup, err := gpt.ReadBackup(f, 512, l.Size)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []*gpt.Table{primary, backup} {
		parts := table.Partitions()
		if len(parts) != len(l.Partitions) {
			t.Fatalf("GPT has %d partitions, want %d", len(parts), len(l.Partitions))
		}
		for i, p := range parts {
			lp := l.Partitions[i]
			if p.Name != string(lp.Name) || p.ID.String() != lp.UUID.String() || p.Type.String() != lp.Type ||
				int64(p.FirstLBA)*512 != lp.Offset || int64(p.Sectors())*512 != lp.Size || p.Attributes != lp.Attributes {
				t.Errorf("GPT entry %d = %+v, want %+v", i+1, p, lp)
			}
		}
	}
}

func TestWriteDeterministic(t *testing.T) {
	a, _ := writeImage(t, contract.AMD64)
	b, _ := writeImage(t, contract.AMD64)
	if fileHash(t, a) != fileHash(t, b) {
		t.Error("two writes of the same layout and contents differ")
	}
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestWriteErrors(t *testing.T) {
	l := layout(t, contract.AMD64)
	big := sparseFile(t, mib+1)
	tests := []struct {
		name     string
		layout   func(disk.Layout) disk.Layout
		contents map[contract.PartitionName]disk.Content
		wantErr  string
	}{
		{
			name:     "content longer than partition",
			contents: map[contract.PartitionName]disk.Content{contract.PartVerityA: disk.FromReader(bytes.NewReader(make([]byte, mib+5)))},
			wantErr:  fmt.Sprintf("partition verity-a: content is %d bytes but the partition holds %d", mib+5, mib),
		},
		{
			name: "region write past the end",
			contents: map[contract.PartitionName]disk.Content{contract.PartVerityB: func(w io.WriterAt, size int64) error {
				_, err := w.WriteAt([]byte("xy"), size-1)
				return err
			}},
			wantErr: "partition verity-b: write of 2 bytes at offset 1048575 exceeds the partition's 1048576 bytes",
		},
		{
			name:     "file larger than partition",
			contents: map[contract.PartitionName]disk.Content{contract.PartVerityA: disk.FromFile(big)},
			wantErr:  fmt.Sprintf("partition verity-a: %s is %d bytes but the partition holds %d", big, mib+1, mib),
		},
		{
			name:     "unknown partition",
			contents: map[contract.PartitionName]disk.Content{"swap": disk.FromReader(strings.NewReader("x"))},
			wantErr:  `content given for "swap": disk: unknown partition "swap"`,
		},
		{
			name:     "missing file",
			contents: map[contract.PartitionName]disk.Content{contract.PartData: disk.FromFile("/nonexistent/data.img")},
			wantErr:  "partition data: open /nonexistent/data.img",
		},
		{
			name: "overlapping partitions",
			layout: func(l disk.Layout) disk.Layout {
				l.Partitions = append([]disk.Partition(nil), l.Partitions...)
				l.Partitions[1].Offset -= mib
				return l
			},
			wantErr: "partition root-a: starts at",
		},
		{
			name: "partition past the usable end",
			layout: func(l disk.Layout) disk.Layout {
				last := l.Partitions[len(l.Partitions)-1]
				l.Size = last.Offset + last.Size // no room left for the backup GPT
				return l
			},
			wantErr: "partition data: ends at",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lay := l
			if tt.layout != nil {
				lay = tt.layout(l)
			}
			path := filepath.Join(t.TempDir(), "disk.raw")
			err := disk.Write(path, lay, tt.contents)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Write error = %v, want one containing %q", err, tt.wantErr)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("failed Write left %s behind (%v)", path, err)
			}
		})
	}
}

// sparseFile returns a new sparse file of n bytes.
func sparseFile(t *testing.T, n int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "big.img")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, n); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSgdisk has sgdisk check the table and read back names, types and GUIDs; sgdisk names the
// DPS types it knows, so the root and verity partitions show as the architecture's.
func TestSgdisk(t *testing.T) {
	sgdisk := testutil.Tool(t, "sgdisk", "gdisk")
	for _, tt := range []struct {
		arch             contract.Arch
		root, rootVerity string
	}{
		{contract.AMD64, "Linux x86-64 root (/)", "Linux x86-64 root verity"},
		{contract.ARM64, "Linux ARM64 root (/)", "Linux ARM64 root verity"},
	} {
		t.Run(string(tt.arch), func(t *testing.T) {
			typeNames := map[contract.PartitionName]string{
				contract.PartESP:     "EFI system partition",
				contract.PartRootA:   tt.root,
				contract.PartVerityA: tt.rootVerity,
				contract.PartRootB:   tt.root,
				contract.PartVerityB: tt.rootVerity,
				contract.PartData:    "Linux filesystem",
			}
			testSgdisk(t, sgdisk, tt.arch, typeNames)
		})
	}
}

func testSgdisk(t *testing.T, sgdisk string, arch contract.Arch, typeNames map[contract.PartitionName]string) {
	path, l := writeImage(t, arch)

	if out := testutil.Run(t, sgdisk, "-v", path); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", out)
	}
	out := testutil.Run(t, sgdisk, "-p", path)
	if !strings.Contains(out, "Disk identifier (GUID): "+strings.ToUpper(l.DiskGUID.String())) {
		t.Errorf("sgdisk -p does not show disk GUID %s:\n%s", l.DiskGUID, out)
	}
	field := func(info, name string) string {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `: (.*)$`).FindStringSubmatch(info)
		if m == nil {
			return ""
		}
		return m[1]
	}
	for i, p := range l.Partitions {
		info := testutil.Run(t, sgdisk, "-i", fmt.Sprint(i+1), path)
		checks := map[string]string{
			"Partition GUID code":   strings.ToUpper(p.Type) + " (" + typeNames[p.Name] + ")",
			"Partition unique GUID": strings.ToUpper(p.UUID.String()),
			"First sector":          fmt.Sprintf("%d ", p.Offset/512),
			"Last sector":           fmt.Sprintf("%d ", (p.Offset+p.Size)/512-1),
			"Partition name":        "'" + string(p.Name) + "'",
			"Attribute flags":       fmt.Sprintf("%016x", p.Attributes),
		}
		for name, want := range checks {
			if got := field(info, name); !strings.HasPrefix(got, want) {
				t.Errorf("partition %s: %s = %q, want %q", p.Name, name, got, want)
			}
		}
	}
	// The root hash is visible in the PARTUUIDs exactly as systemd expects it.
	info := testutil.Run(t, sgdisk, "-i", "2", path)
	if got := field(info, "Partition unique GUID"); got != "01234567-89AB-CDEF-0123-456789ABCDEF" {
		t.Errorf("root-a PARTUUID = %s, want the first 128 bits of the root hash", got)
	}
}

// TestESPWithFATTools checks the ESP that images/fat wrote inside the disk,
// both in place (mtools' @@offset) and extracted (fsck.fat).
func TestESPWithFATTools(t *testing.T) {
	fsck := testutil.Tool(t, "fsck.fat", "dosfstools")
	mdir := testutil.Tool(t, "mdir", "mtools")
	mcopy := testutil.Tool(t, "mcopy", "mtools")
	path, l := writeImage(t, contract.AMD64)
	esp, err := l.Partition(contract.PartESP)
	if err != nil {
		t.Fatal(err)
	}

	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	extracted := filepath.Join(t.TempDir(), "esp.img")
	if err := os.WriteFile(extracted, img[esp.Offset:esp.Offset+esp.Size], 0o644); err != nil {
		t.Fatal(err)
	}
	out := testutil.Run(t, fsck, "-n", "-v", extracted)
	for _, bad := range []string{"differ", "wrong", "Performing changes", "only space for"} {
		if strings.Contains(out, bad) {
			t.Errorf("fsck.fat reports %q:\n%s", bad, out)
		}
	}

	inPlace := fmt.Sprintf("%s@@%d", path, esp.Offset)
	if listing := testutil.Run(t, mdir, "-i", inPlace, "::/EFI/BOOT"); !strings.Contains(listing, "BOOTX64  EFI    300000") {
		t.Errorf("mdir in the disk image:\n%s", listing)
	}
	if listing := testutil.Run(t, mdir, "-i", inPlace, "::/EFI/Linux"); !strings.Contains(listing, "200000") || !strings.Contains(listing, "ballast-1-a-0.1.0.efi") {
		t.Errorf("mdir of EFI/Linux in the disk image:\n%s", listing)
	}
	dst := filepath.Join(t.TempDir(), "BOOTX64.EFI")
	testutil.Run(t, mcopy, "-n", "-i", inPlace, "::/EFI/BOOT/BOOTX64.EFI", dst)
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, espFiles[0].Data) {
		t.Errorf("BOOTX64.EFI read back from the disk image differs (%v)", err)
	}
}
