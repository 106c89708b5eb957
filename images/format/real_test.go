package format

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRealImage converts a built image to every format, checks each with
// qemu-img and logs sizes and times:
//
//	BALLAST_FORMAT_IMAGE=$PWD/build/qemu/disk.raw go test -run RealImage -v ./images/format
//
// The image is only read; outputs go to a temporary directory.
//
// It is a report, not part of make test: what it checks on a real image
// (every format against disk.raw with qemu-img) is tests/image's TestFormats,
// which make test runs on the image it has just built, and the converters'
// own tests here cover the compressed QCOW2 it adds. Converting a whole image
// six more times would add minutes for sizes and times nobody reads there.
func TestRealImage(t *testing.T) {
	raw := os.Getenv("BALLAST_FORMAT_IMAGE")
	if raw == "" {
		t.Skip("opt-in size and time report: set BALLAST_FORMAT_IMAGE to a built disk.raw")
	}
	needQemuImg(t)
	st, err := os.Stat(raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%-17s %9s %9s %8s", "format", "size MiB", "alloc MiB", "time")
	t.Logf("%-17s %9.1f %9.1f %8s", "input", float64(st.Size())/mib, allocMiB(st), "")
	dir := t.TempDir()
	for _, c := range []struct {
		f    Format
		opts Options
	}{
		{Raw, testOpts}, {QCOW2, testOpts}, {QCOW2, Options{Compress: true}}, {VMDK, testOpts}, {VHD, testOpts}, {GCE, testOpts},
	} {
		name := string(c.f)
		if c.opts.Compress {
			name += "-compressed"
		}
		out := filepath.Join(dir, name+Ext(c.f))
		start := time.Now()
		if err := Convert(context.Background(), raw, out, c.f, c.opts); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		ost, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-17s %9.1f %9.1f %8s", name, float64(ost.Size())/mib, allocMiB(ost), took.Round(time.Millisecond))
		switch c.f {
		case QCOW2, VMDK:
			qemuImg(t, "check", "-f", qemuDriver(c.f), out)
		}
		if c.f != GCE {
			qemuImg(t, "compare", "--image-opts", qemuSpec(Raw, raw), qemuSpec(c.f, out))
		}
		os.Remove(out)
	}
}
