package iso

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/ballast-os/ballast/apiserver/userdata"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/fat"
)

var testTime = time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)

// memImage is an in-memory io.WriterAt/io.ReaderAt whose unwritten bytes hold fill, so a test can
// tell whether Write left any byte unwritten.
type memImage struct {
	b    []byte
	fill byte
}

func (m *memImage) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		old := len(m.b)
		if end > cap(m.b) {
			m.b = append(m.b[:cap(m.b)], make([]byte, end-cap(m.b)+cap(m.b))...)[:old]
		}
		m.b = m.b[:end]
		for i := old; i < end; i++ {
			m.b[i] = m.fill
		}
	}
	return copy(m.b[off:], p), nil
}

func (m *memImage) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func pseudoRandom(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// testFiles is a tree with what the writer must get right: nested and deep paths, empty files,
// a multi-MiB file streamed from a Reader, names that need Rock Ridge (case, '-', several dots,
// more than a record holds), names whose ISO9660 identifiers collide, and a directory of many
// files spanning several blocks.
func testFiles() []File {
	big := pseudoRandom(1, 5<<20+123)
	files := []File{
		{Path: "user-data", Data: []byte("#cloud-config\nhostname: iso\n")},
		{Path: "meta-data", Data: []byte("instance-id: iid-1\n")},
		{Path: "install.json", Data: []byte(`{"variant":"metal"}`)},
		{Path: "disk.raw.zst", Reader: bytes.NewReader(big), Size: int64(len(big))},
		{Path: "ovf-env.xml", Data: []byte("<Environment/>")},
		{Path: "empty"},
		{Path: "EFI/BOOT/BOOTX64.EFI", Data: pseudoRandom(2, 70000)},
		{Path: "a/b/c/d/e/f/g/h/i/j/deep.txt", Data: []byte("deep")},
		{Path: "a/b/empty-too"},
		{Path: "names/" + strings.Repeat("Long-Name.", 20) + "txt", Data: []byte("long")},
		{Path: "names/" + strings.Repeat("x", maxNameBytes), Data: []byte("longest")},
		{Path: "names/a-b", Data: []byte("a-b")},
		{Path: "names/a_b", Data: []byte("a_b")},
		{Path: "names/A-B", Data: []byte("A-B")},
		{Path: "names/.hidden", Data: []byte("dot")},
		{Path: "names/dir.with.dots/x", Data: []byte("x")},
	}
	for i := range 600 {
		files = append(files, File{Path: fmt.Sprintf("many/file-%04d.txt", i), Data: []byte(fmt.Sprint(i))})
	}
	return files
}

// content returns each file's bytes (reading a Reader's content from a fresh copy of the list).
func content(files []File) map[string][]byte {
	m := make(map[string][]byte)
	for _, f := range files {
		if f.Reader != nil {
			b, _ := io.ReadAll(f.Reader)
			m[f.Path] = b
		} else {
			m[f.Path] = f.Data
		}
	}
	return m
}

func writeMem(t *testing.T, opts Options, files []File, fill byte) *memImage {
	t.Helper()
	m := &memImage{fill: fill}
	n, err := Write(m, opts, files)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if n != int64(len(m.b)) || n%blockSize != 0 {
		t.Fatalf("Write returned %d, wrote %d bytes", n, len(m.b))
	}
	return m
}

func testESP(t *testing.T) []byte {
	t.Helper()
	m := &memImage{}
	err := fat.Write(m, 34<<20, fat.Options{Label: "EFIBOOT", VolumeID: 0x1234abcd, Time: testTime, ClusterSize: 512},
		[]fat.File{{Path: "EFI/BOOT/BOOTX64.EFI", Data: espLoader()}})
	if err != nil {
		t.Fatal(err)
	}
	return m.b[:34<<20]
}

func TestRoundTrip(t *testing.T) {
	for _, hybrid := range []bool{false, true} {
		t.Run(fmt.Sprintf("hybrid=%v", hybrid), func(t *testing.T) {
			opts := Options{VolumeID: "BALLAST_INSTALL", Time: testTime}
			if hybrid {
				opts.EFIBoot = testESP(t)
			}
			img := writeMem(t, opts, testFiles(), 0)
			im, err := Open(img)
			if err != nil {
				t.Fatal(err)
			}
			if im.VolumeID() != "BALLAST_INSTALL" {
				t.Errorf("VolumeID = %q", im.VolumeID())
			}
			for _, f := range testFiles() {
				want := content([]File{f})[f.Path]
				got, err := im.ReadFile(f.Path, -1)
				if err != nil {
					t.Errorf("ReadFile(%q): %v", f.Path, err)
					continue
				}
				if !bytes.Equal(got, want) {
					t.Errorf("ReadFile(%q): %d bytes differ from the %d written", f.Path, len(got), len(want))
				}
				off, size, err := im.Lookup(f.Path)
				if err != nil || size != int64(len(want)) || off%blockSize != 0 {
					t.Errorf("Lookup(%q) = %d, %d, %v", f.Path, off, size, err)
				}
			}
			// Without Rock Ridge a reader sees the ISO9660 names: they must be there too.
			if _, _, err := im.Lookup("INSTALL.JSON"); err == nil {
				t.Error("Lookup(INSTALL.JSON) matched a Rock Ridge name case-insensitively")
			}
			if _, err := im.ReadFile("install.json", 3); err == nil {
				t.Error("ReadFile with max 3 read a 19-byte file")
			}
		})
	}
}

// TestExtents checks that files occupy disjoint single extents inside the image, and that the
// hybrid image's EFI image and partition hold exactly the caller's bytes.
func TestExtents(t *testing.T) {
	esp := testESP(t)
	img := writeMem(t, Options{VolumeID: "X", Time: testTime, EFIBoot: esp}, testFiles(), 0)
	im, err := Open(img)
	if err != nil {
		t.Fatal(err)
	}
	type span struct {
		path     string
		off, end int64
	}
	var spans []span
	for _, f := range testFiles() {
		off, size, err := im.Lookup(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		if size > 0 {
			spans = append(spans, span{f.Path, off, off + size})
		}
	}
	for i, a := range spans {
		for _, b := range spans[i+1:] {
			if a.off < b.end && b.off < a.end {
				t.Errorf("%s [%d,%d) overlaps %s [%d,%d)", a.path, a.off, a.end, b.path, b.off, b.end)
			}
		}
		if a.end > int64(len(img.b)) {
			t.Errorf("%s ends at %d, past the image's %d bytes", a.path, a.end, len(img.b))
		}
	}
	if !bytes.Contains(img.b, esp[:4096]) {
		t.Error("the EFI image's first bytes are not in the image")
	}
}

func TestReproducible(t *testing.T) {
	esp := testESP(t)
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"seed", Options{VolumeID: "cidata", Time: testTime}},
		{"hybrid", Options{VolumeID: "BALLAST_INSTALL", Time: testTime, EFIBoot: esp}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Different prior content of the target, and the files in another order: same bytes.
			a := writeMem(t, tc.opts, testFiles(), 0x00)
			reversed := testFiles()
			for i, j := 0, len(reversed)-1; i < j; i, j = i+1, j-1 {
				reversed[i], reversed[j] = reversed[j], reversed[i]
			}
			b := writeMem(t, tc.opts, reversed, 0xA5)
			if !bytes.Equal(a.b, b.b) {
				i := 0
				for i < len(a.b) && i < len(b.b) && a.b[i] == b.b[i] {
					i++
				}
				t.Fatalf("two writes differ (sizes %d and %d), first at offset %d", len(a.b), len(b.b), i)
			}
			// And the output does depend on the input: another time changes it.
			later := tc.opts
			later.Time = testTime.Add(time.Second)
			if c := writeMem(t, later, testFiles(), 0); bytes.Equal(a.b, c.b) {
				t.Error("a different Time gave the same image")
			}
		})
	}
}

func TestDiskGUID(t *testing.T) {
	esp := testESP(t)
	files := []File{{Path: "install.json", Data: []byte("{}")}}
	derived := writeMem(t, Options{Time: testTime, EFIBoot: esp}, files, 0)
	other := writeMem(t, Options{Time: testTime, EFIBoot: esp}, []File{{Path: "install.json", Data: []byte("[]")}}, 0)
	guid := [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef, 0x81, 2, 3, 4, 5, 6, 7, 8}
	given := writeMem(t, Options{Time: testTime, EFIBoot: esp, DiskGUID: guid}, files, 0)
	diskGUID := func(img *memImage) []byte { return img.b[512+56 : 512+72] }
	if bytes.Equal(diskGUID(derived), diskGUID(other)) {
		t.Error("the derived disk GUID does not depend on the content")
	}
	// On disk the first three fields are little-endian.
	want := []byte{0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xef, 0x4d, 0x81, 2, 3, 4, 5, 6, 7, 8}
	if got := diskGUID(given); !bytes.Equal(got, want) {
		t.Errorf("disk GUID on disk = %x, want %x", got, want)
	}
}

func TestWriteRejects(t *testing.T) {
	ok := []File{{Path: "f", Data: []byte("x")}}
	for _, tc := range []struct {
		name  string
		opts  Options
		files []File
		want  string
	}{
		{"volume ID too long", Options{VolumeID: strings.Repeat("V", 33), Time: testTime}, ok, "is 33 bytes, more than 32"},
		{"volume ID not printable", Options{VolumeID: "a\nb", Time: testTime}, ok, "byte 0x0a at 1 is not printable"},
		{"zero time", Options{VolumeID: "v"}, ok, "outside the years 1900-2155"},
		{"EFI image not sectors", Options{Time: testTime, EFIBoot: make([]byte, 1000)}, ok, "EFI boot image of 1000 bytes"},
		{"EFI image empty", Options{Time: testTime, EFIBoot: []byte{}}, ok, "EFI boot image of 0 bytes"},
		{"absolute path", Options{Time: testTime}, []File{{Path: "/etc/x"}}, `file "/etc/x": want a relative`},
		{"dot dot", Options{Time: testTime}, []File{{Path: "a/../b"}}, `invalid component ".."`},
		{"empty component", Options{Time: testTime}, []File{{Path: "a//b"}}, `invalid component ""`},
		{"name too long", Options{Time: testTime}, []File{{Path: strings.Repeat("n", 254)}}, "component of 254 bytes, more than 253"},
		{"twice", Options{Time: testTime}, []File{{Path: "a/b"}, {Path: "a/b"}}, `file "a/b": given twice`},
		{"file then dir", Options{Time: testTime}, []File{{Path: "a"}, {Path: "a/b"}}, `file "a/b": a is also a file`},
		{"dir then file", Options{Time: testTime}, []File{{Path: "a/b"}, {Path: "a"}}, `file "a": a is also a directory`},
		{"size mismatch", Options{Time: testTime}, []File{{Path: "a", Data: []byte("xy"), Size: 3}}, "Size 3 but 2 bytes of Data"},
		{"too big", Options{Time: testTime}, []File{{Path: "huge", Reader: strings.NewReader(""), Size: 1 << 32}}, `file "huge": 4294967296 bytes is more than the 4294967295 one ISO9660 extent holds`},
		{"negative", Options{Time: testTime}, []File{{Path: "neg", Reader: strings.NewReader(""), Size: -1}}, "negative size"},
		{"short reader", Options{Time: testTime}, []File{{Path: "s", Reader: strings.NewReader("abc"), Size: 5000}}, `file "s": reader ended after 3 of 5000 bytes`},
		{"failing reader", Options{Time: testTime}, []File{{Path: "e", Reader: iotest.ErrReader(errors.New("disk on fire")), Size: 10}}, `file "e": read at 0: disk on fire`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Write(&memImage{}, tc.opts, tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Write error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestISOIdentifiers(t *testing.T) {
	for _, tc := range []struct {
		names []string // in name order, as assignIDs gets them
		dir   bool
		want  []string
	}{
		{[]string{"user-data"}, false, []string{"USER_DATA.;1"}},
		{[]string{"install.json"}, false, []string{"INSTALL.JSON;1"}},
		{[]string{"disk.raw.zst"}, false, []string{"DISK_RAW.ZST;1"}},
		{[]string{".hidden"}, false, []string{"_HIDDEN.;1"}},
		{[]string{"EFI"}, true, []string{"EFI"}},
		{[]string{"dir.with.dots"}, true, []string{"DIR_WITH_DOTS"}},
		{[]string{"A-B", "a-b", "a_b"}, false, []string{"A_B.;1", "A_B1.;1", "A_B2.;1"}},
		{[]string{"x.verylongextension"}, false, []string{"X.VERYLONG;1"}},
		{[]string{strings.Repeat("n", 40) + ".txt", strings.Repeat("n", 41) + ".txt"}, false,
			[]string{strings.Repeat("N", 27) + ".TXT;1", strings.Repeat("N", 26) + "1.TXT;1"}},
		{[]string{strings.Repeat("d", 40)}, true, []string{strings.Repeat("D", 31)}},
	} {
		var nodes []*node
		for _, n := range tc.names {
			nodes = append(nodes, &node{name: n, dir: tc.dir})
		}
		if err := assignIDs(nodes); err != nil {
			t.Errorf("assignIDs(%q): %v", tc.names, err)
			continue
		}
		for i, n := range nodes {
			if got := n.id.String(); got != tc.want[i] {
				t.Errorf("assignIDs(%q)[%d] = %q, want %q", tc.names, i, got, tc.want[i])
			}
		}
	}
}

// TestRecordSplit checks that system use entries that do not fit a record move to a
// continuation area, behind a CE entry, and that every record stays within 255 bytes.
func TestRecordSplit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		wantCont bool
	}{
		{"user-data", false},
		{strings.Repeat("n", 120), false},
		{strings.Repeat("n", 150), true},
		{strings.Repeat("n", 200), true},
		{strings.Repeat("n", maxNameBytes), true},
	} {
		n := &node{name: tc.name}
		n.id = plainID(tc.name, false)
		r, err := newRecord(n, []byte(n.id.String()), nil, append([][]byte{pxEntry(modeFile, 1)}, nmEntries(tc.name)...))
		if err != nil {
			t.Fatal(err)
		}
		if got := r.cont != nil; got != tc.wantCont || r.length() > maxRecordLen {
			t.Errorf("name of %d bytes: continuation %v (want %v), record %d bytes", len(tc.name), got, tc.wantCont, r.length())
		}
		// The name comes back whole from the NM entries, wherever they are.
		all := append(append([]byte{}, r.inline...), r.cont...)
		var name []byte
		for len(all) >= 4 {
			if string(all[:2]) == "NM" {
				name = append(name, all[5:all[2]]...)
			}
			all = all[all[2]:]
		}
		if string(name) != tc.name {
			t.Errorf("NM entries spell %q, want %q", name, tc.name)
		}
	}
	if len(erEntry()) <= maxRecordLen-dirRecordFixed-2-len(spEntry())-len(pxEntry(modeDir, 2)) {
		t.Error("the ER entry fits the root record: the continuation path for it is untested")
	}
}

// TestUserdataDetect checks that the host's seed detector sees a Write'd NoCloud volume.
func TestUserdataDetect(t *testing.T) {
	img := writeMem(t, Options{VolumeID: "cidata", Time: testTime}, []File{
		{Path: "user-data", Data: []byte("#cloud-config\n")},
		{Path: "meta-data", Data: []byte("instance-id: x\n")},
	}, 0)
	v, err := userdata.Detect(img)
	if err != nil {
		t.Fatal(err)
	}
	if v.FSType != userdata.FSISO9660 || !v.HasLabel("cidata") || len(v.Labels) != 1 || v.Labels[0] != "cidata" {
		t.Errorf("Detect = %+v, want iso9660 labelled cidata", v)
	}
	// The seed must fit the seed partition the installer gives it.
	if len(img.b) > (contract.SeedLastLBA-contract.SeedFirstLBA+1)*512 {
		t.Errorf("a seed volume of %d bytes does not fit the seed partition", len(img.b))
	}
}

// espLoader stands for the boot loader on the test ESP.
func espLoader() []byte { return pseudoRandom(3, 100000) }
