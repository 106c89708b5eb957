package userdata

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

// toolPackage is the Debian package of each image-making tool the tests use.
var toolPackage = map[string]string{
	"mkfs.fat": "dosfstools", "mkfs.vfat": "dosfstools", "mcopy": "mtools", "mlabel": "mtools",
	"genisoimage": "genisoimage", "xorriso": "xorriso",
}

// run runs an image-making tool; a missing one is testutil.Tool's business.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	testutil.Run(t, testutil.Tool(t, name, toolPackage[name]), args...)
}

// fatImage makes a FAT image of size MiB with mkfs.fat args, and optionally a user-data file in it
// (written with mcopy, which needs no mount).
func fatImage(t *testing.T, sizeMiB int64, userData string, mkfsArgs ...string) string {
	t.Helper()
	return fatImageWith(t, "mkfs.fat", sizeMiB, userData, mkfsArgs...)
}

func fatImageWith(t *testing.T, mkfs string, sizeMiB int64, userData string, mkfsArgs ...string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fat.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, sizeMiB<<20); err != nil {
		t.Fatal(err)
	}
	run(t, mkfs, append(mkfsArgs, img)...)
	if userData != "" {
		src := filepath.Join(t.TempDir(), "user-data")
		if err := os.WriteFile(src, []byte(userData), 0o600); err != nil {
			t.Fatal(err)
		}
		run(t, "mcopy", "-i", img, src, "::user-data")
	}
	return img
}

func isoImage(t *testing.T, tool, label, userData string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "user-data"), []byte(userData), 0o600); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "seed.iso")
	switch tool {
	case "genisoimage":
		run(t, tool, "-quiet", "-o", img, "-V", label, "-J", "-r", dir)
	case "xorriso":
		run(t, tool, "-as", "mkisofs", "-quiet", "-o", img, "-V", label, "-J", "-r", dir)
	}
	return img
}

func detectPath(t *testing.T, path string) (Volume, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Detect(f)
}

// patch overwrites bytes of a file in place.
func patch(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name   string
		image  func(t *testing.T) string
		wantFS string
		want   []string
		cidata bool
	}{
		{"fat12", func(t *testing.T) string { return fatImage(t, 2, "", "-F", "12", "-n", "CIDATA") }, FSVFAT, []string{"CIDATA"}, true},
		{"vfat12 lower case", func(t *testing.T) string {
			return fatImageWith(t, "mkfs.vfat", 2, "", "-F", "12", "-n", "cidata")
		}, FSVFAT, nil, true}, // mkfs.vfat versions differ in whether they upper-case the label
		{"fat16", func(t *testing.T) string { return fatImage(t, 20, "", "-F", "16", "-n", "CIDATA") }, FSVFAT, []string{"CIDATA"}, true},
		{"fat32", func(t *testing.T) string { return fatImage(t, 64, "", "-F", "32", "-n", "CIDATA") }, FSVFAT, []string{"CIDATA"}, true},
		{"fat other label", func(t *testing.T) string { return fatImage(t, 2, "", "-F", "12", "-n", "BOOT") }, FSVFAT, []string{"BOOT"}, false},
		{"fat no label", func(t *testing.T) string { return fatImage(t, 2, "", "-F", "12") }, FSVFAT, nil, false},
		{"fat12 label only in root dir", func(t *testing.T) string {
			img := fatImage(t, 2, "", "-F", "12", "-n", "CIDATA")
			patch(t, img, bpbLabel16, []byte("NO NAME    "))
			return img
		}, FSVFAT, []string{"CIDATA"}, true},
		{"fat32 label only in root dir", func(t *testing.T) string {
			img := fatImage(t, 64, "", "-F", "32", "-n", "CIDATA")
			patch(t, img, bpbLabel32, []byte("NO NAME    "))
			return img
		}, FSVFAT, []string{"CIDATA"}, true},
		{"fat root dir relabelled", func(t *testing.T) string {
			img := fatImage(t, 2, "", "-F", "12", "-n", "OLD")
			run(t, "mlabel", "-i", img, "::cidata")
			return img
		}, FSVFAT, nil, true}, // labels depend on the mtools version; only the match matters
		{"iso genisoimage lower case", func(t *testing.T) string { return isoImage(t, "genisoimage", "cidata", "x") }, FSISO9660, []string{"cidata"}, true},
		{"iso xorriso upper case", func(t *testing.T) string { return isoImage(t, "xorriso", "CIDATA", "x") }, FSISO9660, []string{"CIDATA"}, true},
		{"iso other label", func(t *testing.T) string { return isoImage(t, "genisoimage", "config-2", "x") }, FSISO9660, []string{"config-2"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vol, err := detectPath(t, tt.image(t))
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if vol.FSType != tt.wantFS {
				t.Errorf("FSType = %q, want %q", vol.FSType, tt.wantFS)
			}
			if tt.want != nil && !reflect.DeepEqual(vol.Labels, tt.want) || tt.want == nil && !tt.cidata && len(vol.Labels) != 0 {
				t.Errorf("Labels = %q, want %q", vol.Labels, tt.want)
			}
			if got := vol.HasLabel("cidata"); got != tt.cidata {
				t.Errorf("HasLabel(cidata) = %v, want %v (labels %q)", got, tt.cidata, vol.Labels)
			}
		})
	}
}

func TestDetectNoFilesystem(t *testing.T) {
	tests := []struct {
		name string
		size int64
		data []byte
	}{
		{"zeroes", 1 << 20, nil},
		{"tiny", 100, nil},
		{"empty", 0, nil},
		{"mbr-like", 1 << 20, append(make([]byte, 510), 0x55, 0xAA)},
		{"jump but bad bpb", 1 << 20, []byte{0xEB, 0x3C, 0x90, 'm', 'k', 'f', 's', '.', 'f', 'a', 't', 0x00, 0x03}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			if err := os.WriteFile(img, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, max(tt.size, int64(len(tt.data)))); err != nil {
				t.Fatal(err)
			}
			if vol, err := detectPath(t, img); !errors.Is(err, ErrNoFilesystem) {
				t.Fatalf("Detect = %+v, %v; want ErrNoFilesystem", vol, err)
			}
		})
	}
}
