package iso

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

// toolPackage is the Debian package of each tool the tests run.
var toolPackage = map[string]string{
	"xorriso": "xorriso", "genisoimage": "genisoimage", "isoinfo": "genisoimage",
	"sgdisk": "gdisk", "fsck.fat": "dosfstools", "mount": "mount", "umount": "mount",
}

func tool(t *testing.T, name string) string {
	t.Helper()
	return testutil.Tool(t, name, toolPackage[name])
}

// writeTree creates files (path -> content) under a new directory and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func openFile(t *testing.T, path string) *Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	im, err := Open(f)
	if err != nil {
		t.Fatalf("Open %s: %v", path, err)
	}
	return im
}

// TestReadForeign reads volumes that xorriso and genisoimage made, with and without Rock Ridge.
func TestReadForeign(t *testing.T) {
	deep := "d1/d2/d3/d4/d5/d6/d7/d8/d9/deep.txt" // deeper than ISO9660's 8 levels: relocated
	tree := map[string]string{
		"user-data":        "#cloud-config\nhostname: foreign\n",
		"meta-data":        "instance-id: i-1\n",
		"install.json":     `{"variant":"metal"}`,
		"ovf-env.xml":      "<Environment/>",
		"EFI/BOOT/x.efi":   strings.Repeat("efi", 1000),
		"dir/MixedCase.md": "mixed",
		"empty":            "",
		deep:               "deep",
	}
	src := writeTree(t, tree)
	rrNames := []string{"user-data", "meta-data", "install.json", "ovf-env.xml", "EFI/BOOT/x.efi", "dir/MixedCase.md", "empty", deep}
	// Without Rock Ridge only names that survive ISO9660's alphabet can be found, and only up
	// to the case.
	plainNames := map[string]string{"install.json": "INSTALL.JSON", "EFI/BOOT/x.efi": "efi/boot/X.EFI", "dir/MixedCase.md": "dir/mixedcase.md", "empty": "EMPTY"}
	cases := []struct {
		name string
		tool string
		args []string
		rr   bool
	}{
		{"xorriso -R", "xorriso", []string{"-as", "mkisofs", "-R", "-V", "cidata"}, true},
		{"xorriso plain", "xorriso", []string{"-rockridge", "off", "-volid", "cidata", "-map", src, "/"}, false},
		{"genisoimage -R", "genisoimage", []string{"-R", "-V", "cidata"}, true},
		{"genisoimage -R -J", "genisoimage", []string{"-R", "-J", "-V", "cidata"}, true},
		{"genisoimage plain", "genisoimage", []string{"-iso-level", "2", "-V", "cidata"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "x.iso")
			args := append(tc.args, "-quiet", "-o", img, src)
			if tc.tool == "xorriso" && tc.args[0] != "-as" { // native commands: the output drive ends the list
				args = append([]string{"-outdev", img}, tc.args...)
			}
			testutil.Run(t, tool(t, tc.tool), args...)
			im := openFile(t, img)
			if im.VolumeID() != "cidata" {
				t.Errorf("VolumeID = %q, want cidata", im.VolumeID())
			}
			check := func(lookup, orig string) {
				t.Helper()
				got, err := im.ReadFile(lookup, 1<<20)
				if err != nil {
					t.Errorf("ReadFile(%q): %v", lookup, err)
					return
				}
				if string(got) != tree[orig] {
					t.Errorf("ReadFile(%q) = %q, want %q", lookup, got, tree[orig])
				}
			}
			if tc.rr {
				for _, p := range rrNames {
					check(p, p)
				}
				// Rock Ridge names are exact: another case is another name.
				if _, _, err := im.Lookup("USER-DATA"); err == nil {
					t.Error("Lookup(USER-DATA) found a file on a Rock Ridge volume that has only user-data")
				}
			} else {
				for orig, lookup := range plainNames {
					check(lookup, orig)
				}
			}
			if _, _, err := im.Lookup("no/such-file"); err == nil || !strings.Contains(err.Error(), `"no" not found in directory /`) {
				t.Errorf("Lookup(no/such-file) error = %v, want one naming the missing component", err)
			}
		})
	}
}

// TestReadRejects checks that damaged or wrong input gives errors that say what and where.
func TestReadRejects(t *testing.T) {
	src := writeTree(t, map[string]string{"user-data": "hello", "dir/file": "x"})
	img := filepath.Join(t.TempDir(), "x.iso")
	testutil.Run(t, tool(t, "xorriso"), "-as", "mkisofs", "-R", "-V", "cidata", "-quiet", "-o", img, src)
	good, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	wrongMagic := bytes.Clone(good)
	copy(wrongMagic[16*blockSize+1:], "CD002")
	badBlockSize := bytes.Clone(good)
	badBlockSize[16*blockSize+128] = 0 // 0x0800 -> 0x0200
	badBlockSize[16*blockSize+129] = 2
	for _, tc := range []struct {
		name string
		img  []byte
		want string
	}{
		{"empty", nil, "read volume descriptor 16 at offset 32768: image ends early"},
		{"truncated in the system area", good[:20000], "image ends early (0 of 2048 bytes at offset 32768)"},
		{"zeros", make([]byte, 64<<10), `volume descriptor 16 at offset 32769: identifier "\x00\x00\x00\x00\x00", want "CD001"`},
		{"wrong magic", wrongMagic, `identifier "CD002", want "CD001"`},
		{"block size", badBlockSize, "logical block size 512, only 2048 is supported"},
		{"truncated before the root directory", good[:17*blockSize], "read root directory at offset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(tc.img))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open error = %v, want one containing %q", err, tc.want)
			}
		})
	}

	im, err := Open(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"missing", `lookup "missing": "missing" not found in directory /`},
		{"dir/missing", `lookup "dir/missing": "missing" not found in directory dir`},
		{"dir", `lookup "dir": is a directory`},
		{"user-data/x", "user-data is a file, not a directory"},
		{"", "empty path"},
		{"dir/../user-data", `invalid component ".."`},
	} {
		if _, _, err := im.Lookup(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Lookup(%q) error = %v, want one containing %q", tc.path, err, tc.want)
		}
	}
	if _, err := im.ReadFile("user-data", 4); err == nil || !strings.Contains(err.Error(), `"user-data" is 5 bytes, more than the 4 allowed`) {
		t.Errorf("ReadFile with a small max: error = %v", err)
	}
	// The file's data cut off: the image still opens, the read says where it stopped.
	off, _, err := im.Lookup("user-data")
	if err != nil {
		t.Fatal(err)
	}
	short, err := Open(bytes.NewReader(good[:off+2]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := short.ReadFile("user-data", -1); err == nil || !strings.Contains(err.Error(), "image ends early (2 of 5 bytes") {
		t.Errorf("ReadFile on a truncated image: error = %v", err)
	}
}
