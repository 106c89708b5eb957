package installer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/gpt"
	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/tests/testutil"
)

const (
	imageSize  = 8 << 20
	targetSize = 12 << 20
)

// installerMedium makes the installer medium: a directory with install.json, the image and
// extra files, and the ISO genisoimage makes of it as /dev/sr0.
func installerMedium(t *testing.T, h *host, img *testImage, extra map[string][]byte) map[string]string {
	dir := t.TempDir()
	img.writeMedium(t, dir, extra)
	h.diskFrom("sr0", mkiso(t, dir, contract.InstallVolumeID))
	return map[string]string{contract.InstallVolumeID: dir}
}

func TestInstall(t *testing.T) {
	sgdisk := testutil.Tool(t, "sgdisk", "gdisk")
	isoinfo := testutil.Tool(t, "isoinfo", "genisoimage")
	h := newHost(t)
	img := newTestImage(t, imageSize)
	userData := []byte("[settings.motd]\ntext = \"from the medium\"\n")
	media := installerMedium(t, h, img, map[string][]byte{contract.InstallUserDataFile: userData})
	target := h.disk("nvme0n1", targetSize, map[string]string{"device/model": "Test NVMe", "device/serial": "S123"})
	h.disk("vda", targetSize, map[string]string{"serial": "other"}) // holds data: not picked
	os.WriteFile(filepath.Join(h.dev, "vda"), []byte("data"), 0o644)

	r := new(run).install(h.config(media, contract.ParamInstall+" "+contract.ParamInstallDisk+"=nvme-Test_NVMe_S123"))
	if r.err != nil || !r.rebooted {
		t.Fatalf("install: %v (rebooted %v)\n%s", r.err, r.rebooted, r.out.String())
	}
	for _, want := range []string{"ballast: install source ", "ballast: install target " + target + " (Test NVMe, 12 MiB)",
		"ballast: install wrote 8 MiB in", "ballast: install verified 4 regions",
		"ballast: install seed user-data (", "ballast: install done, rebooting"} {
		if !strings.Contains(r.out.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, r.out.String())
		}
	}

	// The image is on the disk, except where the GPT changed: the partitions' bytes are intact.
	got, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	for _, reg := range img.manifest.Regions[1:3] {
		if !bytes.Equal(got[reg.Offset:reg.Offset+reg.Size], img.raw[reg.Offset:reg.Offset+reg.Size]) {
			t.Errorf("region %s differs from the image", reg.Name)
		}
	}
	out := testutil.Run(t, sgdisk, "-v", target)
	if !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", out)
	}
	f, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tbl, err := gpt.ReadPrimary(f, 512)
	if err != nil {
		t.Fatal(err)
	}
	if tbl.Header.AlternateLBA != targetSize/512-1 {
		t.Errorf("backup GPT at LBA %d, want the disk's last, %d", tbl.Header.AlternateLBA, targetSize/512-1)
	}
	if _, err := gpt.ReadBackup(f, 512, targetSize); err != nil {
		t.Errorf("backup GPT: %v", err)
	}
	var seed *gpt.Partition
	for _, p := range tbl.Partitions() {
		if p.Name == contract.SeedPartitionName {
			seed = &p
		}
	}
	if seed == nil || seed.FirstLBA != contract.SeedFirstLBA || seed.LastLBA != contract.SeedLastLBA || seed.Number != 3 {
		t.Fatalf("seed partition: %+v", seed)
	}
	if want := contract.DerivedUUID("seed", img.diskGUID.String()); seed.ID.UUID() != want {
		t.Errorf("seed PARTUUID %s, want %s (derived from the disk's)", seed.ID, want)
	}
	// The seed volume read back with isoinfo, from the partition's bytes alone.
	part := filepath.Join(t.TempDir(), "seed")
	os.WriteFile(part, got[contract.SeedFirstLBA*512:(contract.SeedLastLBA+1)*512], 0o644)
	if ud := testutil.Run(t, isoinfo, "-R", "-i", part, "-x", "/user-data"); ud != string(userData) {
		t.Errorf("seed user-data %q, want %q", ud, userData)
	}
	if md := testutil.Run(t, isoinfo, "-R", "-i", part, "-x", "/meta-data"); md != seedMetaData {
		t.Errorf("seed meta-data %q", md)
	}
	if pvd := testutil.Run(t, isoinfo, "-d", "-i", part); !strings.Contains(pvd, "Volume id: "+contract.SeedLabel) {
		t.Errorf("seed volume:\n%s", pvd)
	}
}

func TestInstallWithoutUserData(t *testing.T) {
	sgdisk := testutil.Tool(t, "sgdisk", "gdisk")
	h := newHost(t)
	img := newTestImage(t, imageSize)
	media := installerMedium(t, h, img, nil)
	target := h.disk("sda", targetSize, nil)
	r := new(run).install(h.config(media, contract.ParamInstall))
	if r.err != nil || !r.rebooted {
		t.Fatalf("install: %v\n%s", r.err, r.out.String())
	}
	if !strings.Contains(r.out.String(), "ballast: install seed none") {
		t.Errorf("console:\n%s", r.out.String())
	}
	out := testutil.Run(t, sgdisk, "-p", target)
	if strings.Contains(out, contract.SeedPartitionName) || !strings.Contains(out, "data") {
		t.Errorf("sgdisk -p:\n%s", out)
	}
}

// A named target that holds data is refused unless the command line says wipe, and nothing is
// written to it.
func TestRefuseData(t *testing.T) {
	mkfs := testutil.Tool(t, "mkfs.ext4", "e2fsprogs")
	h := newHost(t)
	img := newTestImage(t, imageSize)
	media := installerMedium(t, h, img, nil)
	target := h.disk("sda", targetSize, nil)
	testutil.Run(t, mkfs, "-q", "-F", "-L", "precious", target)
	before := fileHash(t, target)

	r := new(run).install(h.config(media, contract.ParamInstall+" "+contract.ParamInstallDisk+"=/dev/sda"))
	var de *DataError
	if !errors.As(r.err, &de) || r.rebooted || r.halted == "" {
		t.Fatalf("install: %v (rebooted %v, halted %q)", r.err, r.rebooted, r.halted)
	}
	for _, want := range []string{"ext2/3/4 file system at offset 1080", `label "precious"`, contract.ParamInstallWipe, "nothing was written"} {
		if !strings.Contains(r.out.String(), want) || !strings.Contains(r.halted, want) {
			t.Errorf("console and halt message lack %q:\n%s", want, r.out.String())
		}
	}
	if fileHash(t, target) != before {
		t.Error("the refused target changed")
	}

	r = new(run).install(h.config(media, contract.ParamInstall+" "+contract.ParamInstallDisk+"=/dev/sda "+contract.ParamInstallWipe))
	if r.err != nil || !r.rebooted {
		t.Fatalf("install with wipe: %v\n%s", r.err, r.out.String())
	}
	if !strings.Contains(r.out.String(), "overwriting "+target) {
		t.Errorf("console:\n%s", r.out.String())
	}
}

// A region that reads back wrong is named; DropCache, the step between writing and reading
// back, stands in for a device that lost a write.
func TestCorruptRegion(t *testing.T) {
	h := newHost(t)
	img := newTestImage(t, imageSize)
	media := installerMedium(t, h, img, nil)
	h.disk("sda", targetSize, nil)
	cfg := h.config(media, contract.ParamInstall)
	off := img.manifest.Regions[2].Offset + 12345
	cfg.DropCache = func(f *os.File) error {
		_, err := f.WriteAt([]byte{^img.raw[off]}, off)
		return err
	}
	r := new(run).install(cfg)
	var re *RegionError
	if !errors.As(r.err, &re) || re.Region.Name != "data" || r.rebooted {
		t.Fatalf("install: %v (rebooted %v)", r.err, r.rebooted)
	}
	if !strings.Contains(r.out.String(), `ballast: install failed: verify `) || !strings.Contains(r.out.String(), `region "data" (offset 2097152`) {
		t.Errorf("console:\n%s", r.out.String())
	}
}

// A compressed image that differs from install.json is refused: a wrong size before anything is
// written, a wrong hash by the end of the stream, and then the disk holds no partition table.
func TestTamperedImage(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tamper    func(z []byte) []byte
		want      string
		untouched bool
	}{
		{"truncated", func(z []byte) []byte { return z[:len(z)-1] }, "install.json says", true},
		// The test images are random, so zstd stores them in raw blocks and, without its own
		// checksum, decodes a flipped byte in them to other bytes of the same length.
		{"flipped byte", func(z []byte) []byte { z[len(z)/2] ^= 0x40; return z }, "sha256", false},
		{"broken frame header", func(z []byte) []byte { z[4] ^= 0xff; return z }, "zstd", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			img := newTestImage(t, imageSize)
			dir := t.TempDir()
			img.writeMedium(t, dir, nil)
			p := filepath.Join(dir, contract.InstallImageFile)
			z, _ := os.ReadFile(p)
			os.WriteFile(p, tc.tamper(z), 0o644)
			h.diskFrom("sr0", mkiso(t, dir, contract.InstallVolumeID))
			target := h.disk("sda", targetSize, nil)
			before := fileHash(t, target)
			r := new(run).install(h.config(map[string]string{contract.InstallVolumeID: dir}, contract.ParamInstall))
			if r.err == nil || r.rebooted || !strings.Contains(r.err.Error(), tc.want) {
				t.Fatalf("install: %v (rebooted %v)", r.err, r.rebooted)
			}
			if tc.untouched && fileHash(t, target) != before {
				t.Error("target written")
			}
			f, _ := os.Open(target)
			defer f.Close()
			if _, err := gpt.ReadPrimary(f, 512); err == nil {
				t.Error("a primary GPT is on the target after a refused image")
			}
			if _, err := gpt.ReadBackup(f, 512, imageSize); err == nil {
				t.Error("the image's backup GPT is on the target after a refused image")
			}
		})
	}
}

// User data: the command line wins over a NoCloud volume, which wins over the medium's file.
func TestUserDataSources(t *testing.T) {
	isoinfo := testutil.Tool(t, "isoinfo", "genisoimage")
	cidata := t.TempDir()
	os.WriteFile(filepath.Join(cidata, "user-data"), []byte("from nocloud"), 0o644)
	os.WriteFile(filepath.Join(cidata, "meta-data"), []byte(""), 0o644)
	for _, tc := range []struct {
		name, cmdline string
		nocloud       bool
		fat           bool
		want, origin  string
		err           string
	}{
		{"medium", "", false, false, "from the medium", "/sr0 (BALLAST_INSTALL):user-data)", ""},
		{"nocloud", "", true, false, "from nocloud", "bytes from NoCloud volume ", ""},
		{"nocloud fat", "", false, true, "from a FAT nocloud", "bytes from NoCloud volume ", ""},
		{"cmdline", " ballast.userdata=ZnJvbSB0aGUgY29tbWFuZCBsaW5l", true, false, "from the command line", "bytes from the command line", ""},
		{"cmdline url-safe unpadded", " ballast.userdata=Pz8_", true, false, "???", "bytes from the command line", ""},
		{"cmdline garbage", " ballast.userdata=%%%", true, false, "", "", "not base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			img := newTestImage(t, imageSize)
			media := installerMedium(t, h, img, map[string][]byte{contract.InstallUserDataFile: []byte("from the medium")})
			if tc.nocloud {
				h.diskFrom("sr1", mkiso(t, cidata, "cidata"))
				media["cidata"] = cidata
			}
			cfg := h.config(media, contract.ParamInstall+tc.cmdline)
			if tc.fat {
				mkfs := testutil.Tool(t, "mkfs.fat", "dosfstools")
				testutil.Tool(t, "mcopy", "mtools")
				vol := h.disk("vdb", 2<<20, nil)
				testutil.Run(t, mkfs, "-n", "CIDATA", vol)
				ud := filepath.Join(t.TempDir(), "user-data")
				os.WriteFile(ud, []byte(tc.want), 0o644)
				testutil.Run(t, "mcopy", "-i", vol, ud, "::user-data")
				cfg.ReadFAT = mtoolsFAT
			}
			target := h.disk("sda", targetSize, nil)
			r := new(run).install(cfg)
			if tc.err != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), tc.err) {
					t.Fatalf("install: %v, want %q", r.err, tc.err)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("install: %v\n%s", r.err, r.out.String())
			}
			if !strings.Contains(r.out.String(), tc.origin) {
				t.Errorf("console:\n%s", r.out.String())
			}
			b, _ := os.ReadFile(target)
			part := filepath.Join(t.TempDir(), "seed")
			os.WriteFile(part, b[contract.SeedFirstLBA*512:(contract.SeedLastLBA+1)*512], 0o644)
			if ud := testutil.Run(t, isoinfo, "-R", "-i", part, "-x", "/user-data"); ud != tc.want {
				t.Errorf("seed user-data %q, want %q", ud, tc.want)
			}
		})
	}
}

// The network source: install.json and the image over HTTP, relative to the parameter's URL.
func TestInstallFromURL(t *testing.T) {
	h := newHost(t)
	img := newTestImage(t, imageSize)
	dir := t.TempDir()
	img.writeMedium(t, filepath.Join(dir), map[string][]byte{contract.InstallUserDataFile: []byte("over http")})
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	target := h.disk("vda", targetSize, nil)
	networked := false
	cfg := h.config(nil, contract.ParamInstall+" "+contract.ParamInstallSource+"="+srv.URL+"/"+contract.InstallManifestFile)
	cfg.Network = func(ctx context.Context) error { networked = true; return nil }
	r := new(run).install(cfg)
	if r.err != nil || !networked {
		t.Fatalf("install: %v (network %v)\n%s", r.err, networked, r.out.String())
	}
	if !strings.Contains(r.out.String(), "seed user-data (9 bytes from "+srv.URL) {
		t.Errorf("console:\n%s", r.out.String())
	}
	b, _ := os.ReadFile(target)
	if !bytes.Equal(b[2<<20:3<<20], img.raw[2<<20:3<<20]) {
		t.Error("the image is not on the target")
	}
}

// Without the medium, the installer says so after waiting, having rescanned in between.
func TestNoMedium(t *testing.T) {
	h := newHost(t)
	h.disk("sda", targetSize, nil)
	rescans := 0
	cfg := h.config(nil, contract.ParamInstall)
	cfg.Rescan = func() { rescans++ }
	r := new(run).install(cfg)
	if r.err == nil || !strings.Contains(r.err.Error(), "BALLAST_INSTALL") || rescans == 0 || r.halted == "" {
		t.Fatalf("install: %v (rescans %d, halted %q)", r.err, rescans, r.halted)
	}
}

// mtoolsFAT reads a file from a FAT image with mtools, where the installer would mount it.
func mtoolsFAT(_ context.Context, dev, name string, max int64) ([]byte, error) {
	b, err := exec.Command("mtype", "-i", dev, "::"+name).Output()
	if int64(len(b)) > max {
		return nil, errors.New("too large")
	}
	return b, err
}

// The default halt repeats the message until its context ends.
func TestHalt(t *testing.T) {
	var out bytes.Buffer
	con := &console.Writer{Out: &out, Uptime: func() float64 { return 1 }}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Millisecond)
	defer cancel()
	halt(ctx, con, "install failed: x", 25*time.Millisecond)
	if n := strings.Count(out.String(), "ballast: install halted: install failed: x"); n < 2 {
		t.Errorf("message repeated %d times:\n%s", n, out.String())
	}
}

// A zero run is checked as zeros, without hashing: one stray byte in it is found and placed.
func TestVerifyZeroRegion(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disk")
	data := make([]byte, 3<<20)
	copy(data, "header")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data[:1<<20])
	zero := sha256.Sum256(data[1<<20:])
	regions := []contract.InstallRegion{
		{Name: "gpt", Offset: 0, Size: 1 << 20, SHA256: hex.EncodeToString(sum[:])},
		{Name: "root-b", Offset: 1 << 20, Size: 2 << 20, SHA256: hex.EncodeToString(zero[:]), Zero: true},
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	none := func(*os.File) error { return nil }
	if err := verify(context.Background(), f, regions, none); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if _, err := f.WriteAt([]byte{7}, 2<<20+99); err != nil {
		t.Fatal(err)
	}
	err = verify(context.Background(), f, regions, none)
	var re *RegionError
	if !errors.As(err, &re) || re.Region.Name != "root-b" || !strings.Contains(err.Error(), fmt.Sprintf("non-zero byte at offset %d", 2<<20+99)) {
		t.Fatalf("verify of a zero run with a stray byte: %v", err)
	}
}
