package installer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/iso"
	"github.com/ballast-os/ballast/tests/testutil"

	"github.com/klauspost/compress/zstd"
)

func TestRegions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int64
		parts   []Region
		want    string
		wantErr string
	}{
		{"layout", 100, []Region{{"b", 50, 20}, {"a", 10, 30}}, "gpt@0+10 a@10+40 b@50+20 tail@70+30", ""},
		{"no tail", 60, []Region{{"a", 10, 50}}, "gpt@0+10 a@10+50", ""},
		{"overlap", 100, []Region{{"a", 10, 30}, {"b", 30, 10}}, "", "overlaps"},
		{"beyond", 100, []Region{{"a", 90, 30}}, "", "leaves"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Regions(tc.size, tc.parts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, r := range got {
				s = append(s, r.Name+"@"+itoa(r.Offset)+"+"+itoa(r.Size))
			}
			if strings.Join(s, " ") != tc.want {
				t.Fatalf("got %q, want %q", strings.Join(s, " "), tc.want)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// testDisk writes a small disk with recognisable partitions.
func testDisk(t *testing.T) (string, []Region) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.raw")
	data := make([]byte, 4<<20)
	for i := 1<<20 + 17; i < 2<<20; i += 4093 {
		data[i] = byte(i)
	}
	copy(data[3<<20:], "data partition")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, []Region{{"esp", 1 << 20, 1 << 20}, {"data", 2 << 20, 1<<20 + 512<<10}}
}

func TestCompress(t *testing.T) {
	disk, parts := testDisk(t)
	dir := t.TempDir()
	m1, err := Compress(disk, filepath.Join(dir, "1.zst"), ImageOptions{Variant: "v", Version: "1", Arch: contract.AMD64, Partitions: parts})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Compress(disk, filepath.Join(dir, "2.zst"), ImageOptions{Variant: "v", Version: "1", Arch: contract.AMD64, Partitions: parts})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "1.zst"))
	b, _ := os.ReadFile(filepath.Join(dir, "2.zst"))
	if !bytes.Equal(a, b) || m1.Image.SHA256 != m2.Image.SHA256 {
		t.Fatal("two compressions of one disk differ")
	}
	if s := sha256.Sum256(a); hex.EncodeToString(s[:]) != m1.Image.SHA256 || int64(len(a)) != m1.Image.Size {
		t.Fatal("manifest's image hash or size is not the file's")
	}
	// The regions' hashes are the raw disk's, and the stream decompresses to it.
	raw, _ := os.ReadFile(disk)
	dec, err := zstd.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(dec); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), raw) {
		t.Fatal("decompressed image differs from the disk")
	}
	names := []string{}
	for _, r := range m1.Regions {
		s := sha256.Sum256(raw[r.Offset : r.Offset+r.Size])
		if hex.EncodeToString(s[:]) != r.SHA256 {
			t.Fatalf("region %s: hash differs", r.Name)
		}
		name := r.Name
		if r.Zero {
			name += "(zero)"
			if !allZero(raw[r.Offset : r.Offset+r.Size]) {
				t.Fatalf("region %s at %d is not all zeros", r.Name, r.Offset)
			}
		}
		names = append(names, name)
	}
	// Whole zero MiBs are runs of their own; the partial MiB at the data partition's end is not.
	if got := strings.Join(names, ","); got != "gpt(zero),esp,data(zero),data,tail" {
		t.Fatalf("regions %s", got)
	}
	// The reference decoder agrees.
	if o, err := exec.Command(testutil.Tool(t, "zstd", "zstd"), "-t", "-q", filepath.Join(dir, "1.zst")).CombinedOutput(); err != nil {
		t.Fatalf("zstd -t: %v\n%s", err, o)
	}
}

func TestWriteISO(t *testing.T) {
	disk, parts := testDisk(t)
	dir := t.TempDir()
	zst := filepath.Join(dir, contract.InstallImageFile)
	m, err := Compress(disk, zst, ImageOptions{Variant: "v", Version: "1", Arch: contract.AMD64, Partitions: parts})
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := MarshalManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	tm := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	esp, err := ESP(contract.AMD64, Boot{Loader: []byte("MZ loader"), LoaderConf: "timeout 0\n", UKI: bytes.Repeat([]byte("uki"), 1000),
		Enroll: map[string][]byte{"db.auth": []byte("db")}}, tm, VolumeID("x"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "installer.iso")
	if err := WriteISO(out, esp, manifest, zst, ISOOptions{Time: tm, UserData: []byte("[settings]\n")}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := iso.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	if im.VolumeID() != contract.InstallVolumeID {
		t.Fatalf("volume id %q", im.VolumeID())
	}
	got, err := im.ReadFile(contract.InstallManifestFile, 1<<20)
	if err != nil || !bytes.Equal(got, manifest) {
		t.Fatalf("install.json: %v", err)
	}
	if ud, err := im.ReadFile(contract.InstallUserDataFile, 1<<20); err != nil || string(ud) != "[settings]\n" {
		t.Fatalf("user-data %q: %v", ud, err)
	}
	off, size, err := im.Lookup(contract.InstallImageFile)
	if err != nil || size != m.Image.Size {
		t.Fatalf("image at %d+%d: %v", off, size, err)
	}
	if o, err := exec.Command(testutil.Tool(t, "sgdisk", "gdisk"), "-v", out).CombinedOutput(); err != nil || !strings.Contains(string(o), "No problems found") {
		t.Fatalf("sgdisk -v: %v\n%s", err, o)
	}
	// A manifest that does not hold together is refused before anything is written.
	if err := WriteISO(filepath.Join(dir, "bad.iso"), esp, []byte(`{"image":{}}`), zst, ISOOptions{Time: tm}); err == nil {
		t.Fatal("bad manifest accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.iso")); err == nil {
		t.Fatal("bad.iso written")
	}
}

// install.json names the architecture as uname -m does, the spelling it had before arm64.
func TestCompressArch(t *testing.T) {
	disk, parts := testDisk(t)
	for _, tc := range []struct {
		arch    contract.Arch
		want    string
		wantErr string
	}{
		{contract.AMD64, "x86_64", ""},
		{contract.ARM64, "aarch64", ""},
		{"", "", `architecture ""`},
		{"riscv64", "", `architecture "riscv64"`},
	} {
		m, err := Compress(disk, filepath.Join(t.TempDir(), "i.zst"), ImageOptions{Variant: "v", Version: "1", Arch: tc.arch, Partitions: parts})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want %q", tc.arch, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Arch != tc.want {
			t.Errorf("%s: manifest arch %q, want %q", tc.arch, m.Arch, tc.want)
		}
	}
}

// The firmware starts the architecture's removable-media loader, so that is where the ESP carries
// systemd-boot; mtools reads the volume back.
func TestESPLoaderPath(t *testing.T) {
	mdir := testutil.Tool(t, "mdir", "mtools")
	mtype := testutil.Tool(t, "mtype", "mtools")
	tm := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		arch      contract.Arch
		loader    string // 8.3 directory entry as mdir lists it
		notLoader string
	}{
		{contract.AMD64, "BOOTX64  EFI", "BOOTAA64"},
		{contract.ARM64, "BOOTAA64 EFI", "BOOTX64"},
	} {
		t.Run(string(tc.arch), func(t *testing.T) {
			loader := []byte("MZ systemd-boot for " + string(tc.arch))
			img, err := ESP(tc.arch, Boot{Loader: loader, LoaderConf: "timeout 0\n", UKI: []byte("uki")}, tm, VolumeID("x"))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "esp.img")
			if err := os.WriteFile(path, img, 0o644); err != nil {
				t.Fatal(err)
			}
			listing := testutil.Run(t, mdir, "-i", path, "::/EFI/BOOT")
			if !strings.Contains(listing, tc.loader) || strings.Contains(listing, tc.notLoader) {
				t.Errorf("mdir ::/EFI/BOOT shows no %q (or shows %q):\n%s", tc.loader, tc.notLoader, listing)
			}
			if got := testutil.Run(t, mtype, "-i", path, "::/"+tc.arch.ESPLoaderPath()); got != string(loader) {
				t.Errorf("%s holds %q, want %q", tc.arch.ESPLoaderPath(), got, loader)
			}
		})
	}
	if _, err := ESP("riscv64", Boot{Loader: []byte("MZ")}, tm, 1); err == nil || !strings.Contains(err.Error(), `architecture "riscv64"`) {
		t.Errorf("ESP for riscv64: %v", err)
	}
}

func TestIPXEScript(t *testing.T) {
	s := IPXEScript("console=ttyS0 ballast.install")
	for _, want := range []string{"#!ipxe\n", "chain ${base-url}/installer.efi console=ttyS0 ballast.install ballast.install.source=${base-url}/install.json\n"} {
		if !strings.Contains(s, want) {
			t.Fatalf("script lacks %q:\n%s", want, s)
		}
	}
}
