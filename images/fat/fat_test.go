package fat_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/images/fat"
	"github.com/ballast-os/ballast/tests/testutil"
)

const mib = 1 << 20

var stamp = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// memImage is an in-memory io.WriterAt of fixed size.
type memImage []byte

func (m memImage) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, fmt.Errorf("write of %d bytes at %d outside %d-byte image", len(p), off, len(m))
	}
	return copy(m[off:], p), nil
}

// pseudoRandom returns n deterministic bytes that do not compress or repeat,
// so a misplaced cluster shows up as a mismatch.
func pseudoRandom(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// sampleFiles is an ESP-like tree plus the name shapes that need care.
func sampleFiles() []fat.File {
	return []fat.File{
		{Path: "EFI/BOOT/BOOTX64.EFI", Data: pseudoRandom(1, 1_500_000)},
		{Path: "EFI/Linux/ballast-1.2.3-a.efi", Data: pseudoRandom(2, 70_001)},
		{Path: "loader/loader.conf", Data: []byte("timeout 0\ndefault ballast-a.conf\n")},
		{Path: "loader/entries/ballast-a.conf", Data: []byte("title Ballast (A)\nefi /EFI/Linux/ballast-1.2.3-a.efi\n")},
		{Path: "loader/entries/ballast-b.conf", Data: []byte("title Ballast (B)\n")},
		{Path: "loader/random-seed", Data: []byte{}},
		{Path: "loader/credentials", Dir: true},
		{Path: "names/" + strings.Repeat("x", 13), Data: []byte("13")},
		{Path: "names/" + strings.Repeat("y", 26), Data: []byte("26")},
		{Path: "names/" + strings.Repeat("z", 255), Data: []byte("255")},
		{Path: "names/Ünïcode ✓ file.txt", Data: []byte("unicode")},
		{Path: "names/longfilename1.txt", Data: []byte("one")},
		{Path: "names/longfilename2.txt", Data: []byte("two")},
		{Path: "names/readme.txt", Data: []byte("lower-case 8.3")},
		{Path: "names/UPPER.TXT", Data: []byte("exact 8.3")},
		{Path: "names/.hidden", Data: []byte("dot")},
		{Path: "names/a.b.c", Data: []byte("dots")},
		{Path: "cluster/exact4096", Data: pseudoRandom(3, 4096)},
		{Path: "cluster/exact512", Data: pseudoRandom(4, 512)},
	}
}

func writeMem(t *testing.T, size int64, opts fat.Options, files []fat.File) memImage {
	t.Helper()
	img := make(memImage, size)
	if err := fat.Write(img, size, opts, files); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return img
}

func TestWriteReadBack(t *testing.T) {
	files := sampleFiles()
	img := writeMem(t, 64*mib, fat.Options{Label: "ESP", VolumeID: 0x1234ABCD, Time: stamp}, files)
	r, err := newVolumeReader(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Dir {
			e, err := r.lookup(f.Path)
			if err != nil || e.attr&0x10 == 0 {
				t.Errorf("%s: want a directory, got %+v, %v", f.Path, e, err)
			}
			continue
		}
		got, err := r.readFile(f.Path)
		if err != nil {
			t.Errorf("%s: %v", f.Path, err)
			continue
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s: read back %d bytes that differ from the %d written", f.Path, len(got), len(f.Data))
		}
	}

	// Long names come back exactly, next to upper-case 8.3 names.
	entries, err := r.readDir(mustLookup(t, r, "names").cluster)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range entries {
		got[e.name] = e.short
	}
	for name, short := range map[string]string{
		".":                      ".",
		"..":                     "..",
		"UPPER.TXT":              "UPPER.TXT",
		"readme.txt":             "README.TXT",
		"longfilename1.txt":      "LONGFI~1.TXT",
		"longfilename2.txt":      "LONGFI~2.TXT",
		"Ünïcode ✓ file.txt":     "_N_COD~1.TXT",
		strings.Repeat("z", 255): "ZZZZZZ~1",
		".hidden":                "HIDDEN~1",
		"a.b.c":                  "AB~1.C",
	} {
		if got[name] != short {
			t.Errorf("entry %.20q: short name %q, want %q", name, got[name], short)
		}
	}
	for short, count := range countShort(entries) {
		if count > 1 {
			t.Errorf("short name %q used %d times", short, count)
		}
	}
}

func mustLookup(t *testing.T, r *volumeReader, path string) dirent {
	t.Helper()
	e, err := r.lookup(path)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func countShort(entries []dirent) map[string]int {
	m := map[string]int{}
	for _, e := range entries {
		m[e.short]++
	}
	return m
}

func TestBootSectorFields(t *testing.T) {
	img := writeMem(t, 300*mib, fat.Options{Label: "ballast", VolumeID: 0xCAFEF00D, Time: stamp, HiddenSectors: 2048}, nil)
	le := binary.LittleEndian
	checks := []struct {
		what string
		got  uint64
		want uint64
	}{
		{"bytes per sector", uint64(le.Uint16(img[11:])), 512},
		{"sectors per cluster", uint64(img[13]), 8},
		{"reserved sectors", uint64(le.Uint16(img[14:])), 32},
		{"FAT count", uint64(img[16]), 2},
		{"media", uint64(img[21]), 0xF8},
		{"hidden sectors", uint64(le.Uint32(img[28:])), 2048},
		{"total sectors", uint64(le.Uint32(img[32:])), 300 * mib / 512},
		{"root cluster", uint64(le.Uint32(img[44:])), 2},
		{"FSInfo sector", uint64(le.Uint16(img[48:])), 1},
		{"backup boot sector", uint64(le.Uint16(img[50:])), 6},
		{"volume ID", uint64(le.Uint32(img[67:])), 0xCAFEF00D},
		{"FAT[0]", uint64(le.Uint32(img[32*512:])), 0x0FFFFFF8},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.what, c.got, c.want)
		}
	}
	if got := string(img[71:82]); got != "BALLAST    " {
		t.Errorf("label = %q", got)
	}
	if !bytes.Equal(img[0:1024], img[6*512:8*512]) {
		t.Error("sectors 6-7 are not a copy of the boot sector and FSInfo")
	}
	// Only the root directory's cluster is in use.
	clusters := (300*mib/512 - 32 - 2*int(le.Uint32(img[36:]))) / 8
	if free := le.Uint32(img[512+488:]); int(free) != clusters-1 {
		t.Errorf("FSInfo free count = %d, want %d", free, clusters-1)
	}
	if next := le.Uint32(img[512+492:]); next != 3 {
		t.Errorf("FSInfo next free = %d, want 3", next)
	}
}

func TestDeterministic(t *testing.T) {
	opts := fat.Options{Label: "ESP", VolumeID: 42, Time: stamp}
	a := writeMem(t, 64*mib, opts, sampleFiles())
	shuffled := sampleFiles()
	slices.Reverse(shuffled)
	b := writeMem(t, 64*mib, opts, shuffled)
	if sha256.Sum256(a) != sha256.Sum256(b) {
		t.Error("two writes of the same tree (in different input order) differ")
	}
}

func TestReaderContent(t *testing.T) {
	data := pseudoRandom(7, 100_000)
	img := writeMem(t, 64*mib, fat.Options{Time: stamp}, []fat.File{
		{Path: "EFI/BOOT/BOOTX64.EFI", Reader: bytes.NewReader(data), Size: int64(len(data))},
	})
	r, err := newVolumeReader(img)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.readFile("EFI/BOOT/BOOTX64.EFI")
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("streamed file read back wrong (%v)", err)
	}
}

func TestWriteErrors(t *testing.T) {
	big := make([]byte, 70*mib)
	tests := []struct {
		name    string
		size    int64
		opts    fat.Options
		files   []fat.File
		wantErr string
	}{
		{"too small", 16 * mib, fat.Options{}, nil, "too small for FAT32"},
		{"content does not fit", 64 * mib, fat.Options{}, []fat.File{{Path: "big", Data: big}}, "clusters"},
		{"same path twice", 64 * mib, fat.Options{}, []fat.File{{Path: "a/b"}, {Path: "a/b"}}, `"a/b": path given twice`},
		{"case-only difference", 64 * mib, fat.Options{}, []fat.File{{Path: "EFI/x"}, {Path: "efi/y"}}, "differ only in case"},
		{"file used as directory", 64 * mib, fat.Options{}, []fat.File{{Path: "a"}, {Path: "a/b"}}, `"a" is a file`},
		{"directory given as file", 64 * mib, fat.Options{}, []fat.File{{Path: "a/b"}, {Path: "a"}}, "already a directory"},
		{"absolute path", 64 * mib, fat.Options{}, []fat.File{{Path: "/EFI"}}, "relative"},
		{"dot-dot", 64 * mib, fat.Options{}, []fat.File{{Path: "a/../b"}}, "not allowed"},
		{"bad character", 64 * mib, fat.Options{}, []fat.File{{Path: "a?b"}}, "does not allow"},
		{"short reader", 64 * mib, fat.Options{}, []fat.File{{Path: "f", Reader: strings.NewReader("abc"), Size: 10}}, `"f": reader ended after 3 of 10 bytes`},
		{"long reader", 64 * mib, fat.Options{}, []fat.File{{Path: "f", Reader: strings.NewReader("abcdef"), Size: 3}}, "more than the declared 3 bytes"},
		{"data and reader", 64 * mib, fat.Options{}, []fat.File{{Path: "f", Data: []byte("x"), Reader: strings.NewReader("x"), Size: 1}}, "both Data and Reader"},
		{"directory with content", 64 * mib, fat.Options{}, []fat.File{{Path: "d", Dir: true, Data: []byte("x")}}, "cannot have content"},
		{"label too long", 64 * mib, fat.Options{Label: "TWELVE CHARS"}, nil, "longer than 11"},
		{"label bad character", 64 * mib, fat.Options{Label: "A.B"}, nil, "cannot hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fat.Write(make(memImage, tt.size), tt.size, tt.opts, tt.files)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Write error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestExternalTools checks images of several sizes with fsck.fat and reads
// them back with mtools, neither of which mounts anything.
func TestExternalTools(t *testing.T) {
	fsck := testutil.Tool(t, "fsck.fat", "dosfstools")
	mdir := testutil.Tool(t, "mdir", "mtools")
	mcopy := testutil.Tool(t, "mcopy", "mtools")
	mtype := testutil.Tool(t, "mtype", "mtools")

	files := sampleFiles()
	for _, size := range []int64{33 * mib, 64 * mib, 128 * mib, 256 * mib, 260 * mib, 300 * mib, 512 * mib} {
		t.Run(fmt.Sprintf("%dMiB", size/mib), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "esp.img")
			f, err := os.Create(img)
			if err != nil {
				t.Fatal(err)
			}
			err = fat.Write(f, size, fat.Options{Label: "ESP", VolumeID: 0xB0A7B0A7, Time: stamp}, files)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			if st, err := os.Stat(img); err != nil || st.Size() != size {
				t.Fatalf("image is %v bytes, want %d (%v)", st.Size(), size, err)
			}

			out := testutil.Run(t, fsck, "-n", "-v", img)
			for _, bad := range []string{"differ", "wrong", "Performing changes", "Leaving filesystem unchanged", "only space for"} {
				if strings.Contains(out, bad) {
					t.Errorf("fsck.fat reports %q:\n%s", bad, out)
				}
			}

			listing := testutil.Run(t, mdir, "-i", img, "::/EFI/BOOT")
			if !strings.Contains(listing, "BOOTX64  EFI   1500000") {
				t.Errorf("mdir ::/EFI/BOOT does not show BOOTX64.EFI:\n%s", listing)
			}
			var want []string
			for _, f := range files {
				want = append(want, "::/"+f.Path)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(testutil.Run(t, mdir, "-/", "-b", "-i", img, "::/")), "\n") {
				if !strings.HasSuffix(line, "/") || line == "::/loader/credentials/" {
					got = append(got, strings.TrimSuffix(line, "/"))
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("mdir -/ -b lists\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}

			outDir := t.TempDir()
			for i, f := range files {
				if f.Dir {
					continue
				}
				dst := filepath.Join(outDir, fmt.Sprint(i))
				testutil.Run(t, mcopy, "-n", "-i", img, "::/"+f.Path, dst)
				data, err := os.ReadFile(dst)
				if err != nil || !bytes.Equal(data, f.Data) {
					t.Errorf("mcopy %s: %d bytes differ from the %d written (%v)", f.Path, len(data), len(f.Data), err)
				}
			}
			if got := testutil.Run(t, mtype, "-i", img, "::/loader/loader.conf"); got != string(files[2].Data) {
				t.Errorf("mtype loader.conf = %q", got)
			}
		})
	}
}

// TestFsckRejectsCorruption makes sure the fsck check above can fail: a
// volume whose FSInfo free count is off must be reported.
func TestFsckRejectsCorruption(t *testing.T) {
	fsck := testutil.Tool(t, "fsck.fat", "dosfstools")
	img := writeMem(t, 64*mib, fat.Options{Time: stamp}, sampleFiles())
	binary.LittleEndian.PutUint32(img[512+488:], 12345)
	path := filepath.Join(t.TempDir(), "bad.img")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(fsck, "-n", path).CombinedOutput()
	if err == nil && !strings.Contains(string(out), "Free cluster summary wrong") {
		t.Errorf("fsck.fat accepted a wrong free count:\n%s", out)
	}
}
