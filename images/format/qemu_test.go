package format

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/testutil"
)

var testOpts = Options{
	Time: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
	UUID: [16]byte{0xba, 0x11, 0xa5, 0x70, 1, 2, 0x43, 4, 0x85, 6, 7, 8, 9, 10, 11, 12},
}

func needQemuImg(t testing.TB) {
	t.Helper()
	testutil.Tool(t, "qemu-img", "qemu-utils")
}

// qemuImg runs qemu-img and returns its output, failing the test with the
// output on a non-zero exit.
func qemuImg(t testing.TB, args ...string) string {
	t.Helper()
	return testutil.Run(t, "qemu-img", args...)
}

// qemuDriver is QEMU's name for a format.
func qemuDriver(f Format) string {
	return map[Format]string{Raw: "raw", QCOW2: "qcow2", VMDK: "vmdk", VHD: "vpc"}[f]
}

// qemuSpec is how qemu-img opens an output: vpc must be told to trust the
// footer's size; by default it derives the size from the CHS geometry
// unless the creator is one of the tools it knows to write exact sizes.
func qemuSpec(f Format, path string) string {
	spec := "driver=" + qemuDriver(f) + ",file.filename=" + path
	if f == VHD {
		spec += ",force_size_calc=current_size"
	}
	return spec
}

type qemuInfo struct {
	VirtualSize int64  `json:"virtual-size"`
	Format      string `json:"format"`
	Specific    struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	} `json:"format-specific"`
}

func infoOf(t testing.TB, args ...string) qemuInfo {
	t.Helper()
	var info qemuInfo
	out := qemuImg(t, append([]string{"info", "--output=json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("qemu-img info: %v\n%s", err, out)
	}
	return info
}

// TestQemuReadsOutputs converts test disks to every format and has
// qemu-img check them, compare them with the input and report their size.
func TestQemuReadsOutputs(t *testing.T) {
	needQemuImg(t)
	disks := []struct {
		name string
		size int64
	}{
		{"64MiB", 64 * mib},
		// Not a whole number of clusters or grains, and not of MiB:
		// exercises the padded last cluster and the VHD padding.
		{"odd", 3*mib + 7*512},
		// Several L2 tables and grain tables, most of them empty.
		{"1.5GiB", 1536 * mib},
	}
	cases := []struct {
		f    Format
		opts Options
		// check is whether qemu-img check supports the format.
		check bool
	}{
		{Raw, testOpts, false},
		{QCOW2, testOpts, true},
		{QCOW2, Options{Compress: true}, true},
		{VMDK, testOpts, true},
		{VHD, testOpts, false},
	}
	for _, d := range disks {
		raw := makeDisk(t, d.size, testPatches(d.size))
		for _, c := range cases {
			name := d.name + "/" + string(c.f)
			if c.opts.Compress {
				name += "-compressed"
			}
			t.Run(name, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out"+Ext(c.f))
				if err := Convert(context.Background(), raw, out, c.f, c.opts); err != nil {
					t.Fatal(err)
				}
				if c.check {
					qemuImg(t, "check", "-f", qemuDriver(c.f), out)
				}
				// Not -s: strict mode also compares allocation, and
				// zero clusters are meant to be unallocated. Sizes are
				// checked through qemu-img info below.
				qemuImg(t, "compare", "--image-opts", qemuSpec(Raw, raw), qemuSpec(c.f, out))

				want := d.size
				if c.f == VHD {
					want = alignUp(d.size, mib)
				}
				if got := infoOf(t, "--image-opts", qemuSpec(c.f, out)).VirtualSize; got != want {
					t.Errorf("qemu-img info: virtual size %d, want %d", got, want)
				}

				// The test disks hold under 3 MiB of data: zero blocks
				// must not have been written, whatever the disk size.
				st, err := os.Stat(out)
				if err != nil {
					t.Fatal(err)
				}
				if used := max(allocMiB(st), float64(st.Size())/mib*compact(c.f)); used > 8 {
					t.Errorf("output takes %.1f MiB", used)
				}

				// Same base name: a VMDK names its own file in its
				// descriptor.
				again := filepath.Join(t.TempDir(), "out"+Ext(c.f))
				if err := Convert(context.Background(), raw, again, c.f, c.opts); err != nil {
					t.Fatal(err)
				}
				if fileHash(t, out) != fileHash(t, again) {
					t.Errorf("two conversions differ")
				}
			})
		}
	}
}

// compact is 1 for formats whose zero blocks are left out of the file, 0 for
// those that keep the disk's size and leave holes.
func compact(f Format) float64 {
	if f == Raw || f == VHD {
		return 0
	}
	return 1
}

// TestQemuVHDSizeFromGeometry pins what plain qemu-img makes of our VHD: it
// sizes the disk by the footer's CHS geometry, which is smaller than the
// real size, because "blst" is not among the creators it trusts. That
// doubles as a check of vhdGeometry against QEMU's own implementation of
// the specification's algorithm, across its branches.
func TestQemuVHDSizeFromGeometry(t *testing.T) {
	needQemuImg(t)
	for _, size := range []int64{mib, 64 * mib, 200 * mib, 1 << 30, 40 << 30} {
		raw := makeDisk(t, size, nil)
		out := filepath.Join(t.TempDir(), "disk.vhd")
		if err := Convert(context.Background(), raw, out, VHD, testOpts); err != nil {
			t.Fatal(err)
		}
		c, h, s := vhdGeometry(size / sectorSize)
		want := int64(c) * int64(h) * int64(s) * sectorSize
		if got := infoOf(t, "-f", "vpc", out).VirtualSize; got != want {
			t.Errorf("%d bytes: qemu-img info -f vpc: virtual size %d, want the CHS size %d", size, got, want)
		}
	}
}

// TestQemuVMDKInfo checks qemu-img sees a compressed streamOptimized
// extent, so it is not merely reading a monolithicSparse look-alike.
func TestQemuVMDKInfo(t *testing.T) {
	needQemuImg(t)
	raw := makeDisk(t, 8*mib, testPatches(8 * mib)[:3])
	out := filepath.Join(t.TempDir(), "disk.vmdk")
	if err := Convert(context.Background(), raw, out, VMDK, testOpts); err != nil {
		t.Fatal(err)
	}
	info := infoOf(t, "-f", "vmdk", out)
	data, _ := json.Marshal(info.Specific.Data)
	for _, want := range []string{`"create-type":"streamOptimized"`, `"compressed":true`} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("qemu-img info lacks %s: %s", want, data)
		}
	}
}

// TestQemuVHDExactSize: a disk of ExactVHDSize converts to a VHD that plain qemu-img (no
// force_size_calc) reads back whole, as a user converting it would.
func TestQemuVHDExactSize(t *testing.T) {
	needQemuImg(t)
	size := ExactVHDSize(300 * mib)
	raw := makeDisk(t, size, testPatches(size))
	out := filepath.Join(t.TempDir(), "disk.vhd")
	if err := Convert(context.Background(), raw, out, VHD, testOpts); err != nil {
		t.Fatal(err)
	}
	if got := infoOf(t, "-f", "vpc", out).VirtualSize; got != size {
		t.Errorf("qemu-img info -f vpc: virtual size %d, want %d", got, size)
	}
	if b := testutil.Run(t, "qemu-img", "compare", "-f", "raw", "-F", "vpc", raw, out); !strings.Contains(b, "Images are identical") {
		t.Errorf("qemu-img compare:\n%s", b)
	}
}
