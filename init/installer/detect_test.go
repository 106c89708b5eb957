package installer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

// Each signature as the real tool writes it.
func TestProbe(t *testing.T) {
	for _, tc := range []struct {
		name, tool, pkg string
		size            int64
		make            func(t *testing.T, tool, img string)
		want            string // a substring of the findings
	}{
		{"empty", "", "", 4 << 20, nil, ""},
		{"gpt", "sgdisk", "gdisk", 4 << 20, func(t *testing.T, tool, img string) { testutil.Run(t, tool, "-o", img) }, "GPT partition table at offset 512"},
		{"mbr", "sfdisk", "fdisk", 4 << 20, func(t *testing.T, tool, img string) {
			testutil.Run(t, "sh", "-c", "echo 'start=2048, type=83' | "+tool+" -q -X dos "+img)
		}, "MBR partition table (1 entries) at offset 446"},
		{"ext4", "mkfs.ext4", "e2fsprogs", 4 << 20, func(t *testing.T, tool, img string) { testutil.Run(t, tool, "-q", "-F", "-L", "lbl", img) }, `ext2/3/4 file system at offset 1080 (label "lbl")`},
		{"xfs", "mkfs.xfs", "xfsprogs", 300 << 20, func(t *testing.T, tool, img string) { testutil.Run(t, tool, "-q", img) }, "XFS file system at offset 0"},
		{"btrfs", "mkfs.btrfs", "btrfs-progs", 128 << 20, func(t *testing.T, tool, img string) { testutil.Run(t, tool, "-q", img) }, "btrfs file system at offset 65600"},
		{"fat32", "mkfs.fat", "dosfstools", 40 << 20, func(t *testing.T, tool, img string) { testutil.Run(t, tool, "-F", "32", "-n", "CIDATA", img) }, `FAT32 file system at offset 0 (label "CIDATA")`},
		{"fat16", "mkfs.fat", "dosfstools", 16 << 20, func(t *testing.T, tool, img string) { testutil.Run(t, tool, "-F", "16", img) }, "FAT12/16 file system at offset 0"},
		{"iso9660", "genisoimage", "genisoimage", 0, func(t *testing.T, tool, img string) {
			testutil.Run(t, tool, "-quiet", "-V", "cidata", "-o", img, t.TempDir())
		}, `ISO9660 file system at offset 32769 (label "cidata")`},
		{"luks", "cryptsetup", "cryptsetup-bin", 32 << 20, func(t *testing.T, tool, img string) {
			testutil.Run(t, "sh", "-c", "echo -n pw | "+tool+" luksFormat -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file - "+img)
		}, "LUKS header at offset 0"},
		{"swap", "mkswap", "util-linux", 4 << 20, func(t *testing.T, tool, img string) { testutil.Run(t, tool, img) }, "swap space at offset 4086"},
		{"bytes", "", "", 4 << 20, func(t *testing.T, _, img string) { writeAt(t, img, 123456, "x") }, "non-zero bytes at offset 123456"},
		{"bytes at the end", "", "", 4 << 20, func(t *testing.T, _, img string) { writeAt(t, img, 4<<20-10, "x") }, "non-zero bytes at offset 4194294"},
		{"backup GPT only", "sgdisk", "gdisk", 4 << 20, func(t *testing.T, tool, img string) {
			testutil.Run(t, tool, "-o", img)
			writeAt(t, img, 0, strings.Repeat("\x00", 1<<20))
		}, "backup GPT header at offset 4193792"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "disk")
			if err := os.WriteFile(img, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			os.Truncate(img, tc.size)
			if tc.make != nil {
				tool := tc.tool
				if tool != "" {
					tool = testutil.Tool(t, tc.tool, tc.pkg)
				}
				tc.make(t, tool, img)
			}
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			head, tail, off, err := readEnds(f, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			found, ok := Probe(head, tail, off)
			got := findingsText(found)
			if ok != (tc.want != "") || !strings.Contains(got, tc.want) {
				t.Errorf("Probe = %q (data %v), want %q", got, ok, tc.want)
			}
		})
	}
}

func writeAt(t *testing.T, path string, off int64, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(s), off); err != nil {
		t.Fatal(err)
	}
}
