package initrd

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
)

func TestBuild(t *testing.T) {
	files := []File{
		{Path: "init", Data: []byte("#!init"), Mode: 0o755},
		{Path: "lib/modules/6.1.0/kernel/drivers/md/dm-verity.ko", Data: []byte("ko"), Mode: 0o644},
		{Path: "lib/modules/6.1.0/modules.dep", Data: []byte("kernel/drivers/md/dm-verity.ko:\n"), Mode: 0o644},
	}
	var a, b bytes.Buffer
	if err := Build(&a, files); err != nil {
		t.Fatal(err)
	}
	if err := Build(&b, files); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("not reproducible")
	}
	zr, err := zstd.NewReader(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]cpio.Record{}
	for _, r := range recs {
		got[r.Name] = r
	}
	for _, want := range []string{"init", "dev/console", "lib/modules/6.1.0/modules.dep", "lib/modules", "sysroot"} {
		if _, ok := got[want]; !ok {
			t.Errorf("missing %s", want)
		}
	}
	if c := got["dev/console"]; c.Mode&cpio.S_IFMT != cpio.S_IFCHR || c.Rmajor != 5 || c.Rminor != 1 {
		t.Errorf("dev/console: %+v", c.Info)
	}
	if got["init"].Mode&0o777 != 0o755 {
		t.Errorf("init mode %o", got["init"].Mode)
	}

	// Cross-check with the system cpio, which is what a person would use to look inside.
	cmd := exec.Command(testutil.Tool(t, "cpio", "cpio"), "-it")
	cmd.Stdin = bytes.NewReader(raw.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "lib/modules/6.1.0/kernel/drivers/md/dm-verity.ko") {
		t.Errorf("cpio -t: %v\n%s", err, out)
	}
	if err := Build(&a, []File{{Path: "/abs", Data: nil}}); err == nil {
		t.Error("absolute path accepted")
	}
}
