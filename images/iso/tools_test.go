package iso

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/images/gpt"
	"github.com/ballast-os/ballast/tests/testutil"
)

// writeFile writes an image to a file through Write and returns its path.
func writeFile(t *testing.T, opts Options, files []File) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out.iso")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := Write(f, opts, files)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if st, err := f.Stat(); err != nil || st.Size() != n {
		t.Fatalf("Write returned %d, the file has %v bytes (%v)", n, st.Size(), err)
	}
	return p
}

// wantPaths lists the files and the directories they imply, slash-separated from the root.
func wantPaths(files []File) (all []string) {
	seen := map[string]bool{}
	for _, f := range files {
		for p := f.Path; p != "." && !seen[p]; p = path.Dir(p) {
			seen[p] = true
			all = append(all, p)
		}
	}
	sort.Strings(all)
	return all
}

func diffPaths(t *testing.T, who string, got, want []string) {
	t.Helper()
	sort.Strings(got)
	if strings.Join(got, "\n") == strings.Join(want, "\n") {
		return
	}
	g, w := map[string]bool{}, map[string]bool{}
	for _, p := range got {
		g[p] = true
	}
	for _, p := range want {
		w[p] = true
	}
	for _, p := range want {
		if !g[p] {
			t.Errorf("%s: missing %q", who, p)
		}
	}
	for _, p := range got {
		if !w[p] {
			t.Errorf("%s: unexpected %q", who, p)
		}
	}
}

// checkTree compares a directory tree (an extraction or a mount) with the files written.
func checkTree(t *testing.T, who, dir string, files []File) {
	t.Helper()
	var got []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		got = append(got, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	diffPaths(t, who, got, wantPaths(files))
	for p, want := range content(files) {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			t.Errorf("%s: %v", who, err)
		} else if !bytes.Equal(b, want) {
			t.Errorf("%s: %s has %d bytes that differ from the %d written", who, p, len(b), len(want))
		}
	}
}

// xorriso runs xorriso and fails on any complaint it prints about the image.
func xorriso(t *testing.T, args ...string) string {
	t.Helper()
	out := testutil.Run(t, tool(t, "xorriso"), args...)
	for _, bad := range []string{"WARNING", "SORRY", "FAILURE", "FATAL", "MISHAP"} {
		if strings.Contains(out, bad) {
			t.Errorf("xorriso %s reports a problem:\n%s", strings.Join(args, " "), out)
			break
		}
	}
	return out
}

func field(t *testing.T, out, pattern string) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)` + pattern).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no line matching %q in:\n%s", pattern, out)
	}
	return m[1:]
}

func TestToolsRead(t *testing.T) {
	for _, hybrid := range []bool{false, true} {
		t.Run(fmt.Sprintf("hybrid=%v", hybrid), func(t *testing.T) {
			opts := Options{VolumeID: "cidata", Time: testTime}
			if hybrid {
				opts.VolumeID, opts.EFIBoot = "BALLAST_INSTALL", testESP(t)
			}
			img := writeFile(t, opts, testFiles())

			info := testutil.Run(t, tool(t, "isoinfo"), "-d", "-i", img)
			for _, want := range []string{"Volume id: " + opts.VolumeID + "\n", "Rock Ridge signatures version 1 found", "Logical block size is: 2048"} {
				if !strings.Contains(info, want) {
					t.Errorf("isoinfo -d lacks %q:\n%s", want, info)
				}
			}

			// isoinfo -R -l: every name as written, read through its own Rock Ridge parser.
			var listed []string
			dir := ""
			for _, line := range strings.Split(testutil.Run(t, tool(t, "isoinfo"), "-R", "-l", "-i", img), "\n") {
				if d, ok := strings.CutPrefix(line, "Directory listing of /"); ok {
					dir = strings.TrimSuffix(d, "/")
					continue
				}
				_, name, ok := strings.Cut(line, "]  ")
				if !ok {
					continue
				}
				if name = strings.TrimSuffix(name, " "); name == "." || name == ".." {
					continue
				}
				listed = append(listed, path.Join(dir, name))
				if strings.HasPrefix(line, "d") != !strings.HasPrefix(line, "-") || !strings.HasPrefix(line[1:], "r-xr-xr-x") && !strings.HasPrefix(line[1:], "r--r--r--") {
					t.Errorf("isoinfo -R -l: unexpected mode in %q", line)
				}
			}
			diffPaths(t, "isoinfo -R -l", listed, wantPaths(testFiles()))

			var found []string
			for _, line := range strings.Split(xorriso(t, "-indev", img, "-find", "/"), "\n") {
				if p, ok := strings.CutPrefix(strings.TrimSpace(line), "'/"); ok && strings.HasSuffix(p, "'") && p != "'" {
					found = append(found, strings.TrimSuffix(p, "'"))
				}
			}
			diffPaths(t, "xorriso -find", found, wantPaths(testFiles()))

			out := filepath.Join(t.TempDir(), "x")
			xorriso(t, "-osirrox", "on", "-indev", img, "-extract", "/", out)
			checkTree(t, "xorriso -extract", out, testFiles())
		})
	}
}

func TestToolsHybrid(t *testing.T) {
	esp := testESP(t)
	files := testFiles()
	img := writeFile(t, Options{VolumeID: "BALLAST_INSTALL", Time: testTime, EFIBoot: esp}, files)
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	sectors := uint64(len(raw) / sectorSize)

	// The GPT: both copies valid, one ESP over exactly the FAT image's bytes.
	primary, err := gpt.ReadPrimary(bytes.NewReader(raw), sectorSize)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gpt.ReadBackup(bytes.NewReader(raw), sectorSize, int64(len(raw))); err != nil {
		t.Fatal(err)
	}
	parts := primary.Partitions()
	if len(parts) != 1 || parts[0].Type.String() != "c12a7328-f81f-11d2-ba4b-00a0c93ec93b" {
		t.Fatalf("partitions = %+v, want one ESP", parts)
	}
	p := parts[0]
	if p.Sectors()*sectorSize != uint64(len(esp)) || p.FirstLBA%(blockSize/sectorSize) != 0 {
		t.Errorf("ESP at LBA %d, %d sectors; the FAT image has %d bytes", p.FirstLBA, p.Sectors(), len(esp))
	}
	partBytes := raw[p.FirstLBA*sectorSize : (p.LastLBA+1)*sectorSize]
	if !bytes.Equal(partBytes, esp) {
		t.Error("the ESP's bytes differ from the EFI boot image")
	}
	if end := (primary.Header.EntriesLBA + primary.EntrySectors()) * sectorSize; end > systemAreaBlocks*blockSize {
		t.Errorf("primary GPT entries end at %d, past the system area", end)
	}

	sg := testutil.Run(t, tool(t, "sgdisk"), "-v", img)
	if !strings.Contains(sg, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", sg)
	}
	espFile := filepath.Join(t.TempDir(), "esp.img")
	if err := os.WriteFile(espFile, partBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, tool(t, "fsck.fat"), "-n", espFile)

	// El Torito: one UEFI no-emulation image at the ESP's first block.
	et := xorriso(t, "-indev", img, "-report_el_torito", "plain")
	m := field(t, et, `^El Torito boot img :\s+1\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+\s+\S+\s+(\d+)\s+(\d+)$`)
	if want := []string{"UEFI", "y", "none", "65535", fmt.Sprint(p.FirstLBA / 4)}; strings.Join(m, " ") != strings.Join(want, " ") {
		t.Errorf("El Torito image: platform, bootable, emulation, load size, LBA = %q, want %q\n%s", m, want, et)
	}
	if n := field(t, et, `^El Torito img blks :\s+1\s+(\d+)$`); n[0] != fmt.Sprint(len(esp)/blockSize) {
		t.Errorf("xorriso sees an El Torito image of %s blocks, want %d", n[0], len(esp)/blockSize)
	}

	sa := xorriso(t, "-indev", img, "-report_system_area", "plain")
	checks := []struct{ pattern, want string }{
		{`^System area summary: (.*)$`, "MBR protective-msdos-label cyl-align-off GPT"},
		{`^ISO image size/512 : (\d+)$`, fmt.Sprint(sectors)},
		{`^MBR partition      :\s+1\s+0x00\s+(0xee\s+1\s+\d+)$`, fmt.Sprintf("0xee            1  %11d", sectors-1)},
		{`^GPT lba range      :\s+(.*)$`, fmt.Sprintf("34  %d  %d", sectors-34, sectors-1)},
		{`^GPT type GUID      :\s+1\s+(\S+)$`, "28732ac11ff8d211ba4b00a0c93ec93b"},
		{`^GPT start and size :\s+1\s+(.*)$`, fmt.Sprintf("%d  %d", p.FirstLBA, p.Sectors())},
	}
	for _, c := range checks {
		if got := field(t, sa, c.pattern)[0]; strings.Join(strings.Fields(got), " ") != strings.Join(strings.Fields(c.want), " ") {
			t.Errorf("-report_system_area: %s: got %q, want %q", c.pattern, got, c.want)
		}
	}
}

// TestToolsNoBoot checks that without EFIBoot the system area stays empty and there is no boot
// record.
func TestToolsNoBoot(t *testing.T) {
	img := writeFile(t, Options{VolumeID: "cidata", Time: testTime}, []File{{Path: "user-data", Data: []byte("x")}})
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw[:systemAreaBlocks*blockSize], make([]byte, systemAreaBlocks*blockSize)) {
		t.Error("the system area is not zero")
	}
	out := xorriso(t, "-indev", img, "-report_el_torito", "plain", "-report_system_area", "plain")
	for _, want := range []string{"No El Torito information was loaded", "No System Area was loaded"} {
		if !strings.Contains(out, want) {
			t.Errorf("xorriso does not say %q of a plain volume:\n%s", want, out)
		}
	}
}

func mountOptions(t *testing.T, hybrid bool) Options {
	opts := Options{VolumeID: "cidata", Time: testTime}
	if hybrid {
		opts.VolumeID, opts.EFIBoot = "BALLAST_INSTALL", testESP(t)
	}
	return opts
}

// checkMounted checks a mounted testFiles() volume: every name exact, contents, Rock Ridge modes
// and the recorded time.
func checkMounted(t *testing.T, dir string) {
	t.Helper()
	checkTree(t, "mount", dir, testFiles())
	for p, want := range map[string]fs.FileMode{"user-data": 0o444, "names": fs.ModeDir | 0o555} {
		st, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want || !st.ModTime().Equal(testTime) {
			t.Errorf("%s: mode %v, time %v; want %v, %v", p, st.Mode(), st.ModTime(), want, testTime)
		}
	}
}
