package vmtest

import (
	"path"
	"strings"
	"testing"
)

// TestInitramfs checks the guest's files against the pinned kernel: every module that
// modules.dep names is in the archive, and dm-verity comes with the device-mapper modules it needs,
// so init/kmod can load it in the guest.
func TestInitramfs(t *testing.T) {
	k := Kernel(t)
	files, err := Initramfs(k, []byte("init"), []string{"dm-verity", "virtio_blk"})
	if err != nil {
		t.Fatal(err)
	}
	if files[0].Path != "init" || files[0].Mode != 0o755 {
		t.Errorf("first file %q mode %o, want init 0755", files[0].Path, files[0].Mode)
	}
	base := "lib/modules/" + k.Version + "/"
	have := map[string]bool{}
	var dep string
	for _, f := range files {
		if have[f.Path] {
			t.Errorf("%s twice", f.Path)
		}
		have[f.Path] = true
		if f.Path == base+"modules.dep" {
			dep = string(f.Data)
		}
	}
	var verity string
	for _, line := range strings.Split(strings.TrimSpace(dep), "\n") {
		mod, deps, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("modules.dep line %q", line)
		}
		for _, p := range append(strings.Fields(deps), mod) {
			if !have[base+p] {
				t.Errorf("modules.dep names %s, which is not in the initramfs", p)
			}
		}
		if path.Base(mod) == "dm-verity.ko" {
			verity = line
		}
	}
	for _, need := range []string{"/dm-mod.ko", "/dm-bufio.ko"} {
		if !strings.Contains(verity, need) {
			t.Errorf("modules.dep line of dm-verity %q lacks %s", verity, need)
		}
	}
	if _, err := Initramfs(k, nil, []string{"no-such-module"}); err == nil {
		t.Error("an unknown module was accepted")
	}
}
