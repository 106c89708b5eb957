package kmod

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

func testIndex() Index {
	ix := Index{}
	for _, m := range []Module{
		{Name: "dm_verity", Path: "kernel/drivers/md/dm-verity.ko", Depends: []string{"dm_mod", "dm_bufio"}},
		{Name: "dm_bufio", Path: "kernel/drivers/md/dm-bufio.ko"},
		{Name: "dm_mod", Path: "kernel/drivers/md/dm-mod.ko"},
		{Name: "virtio_blk", Path: "kernel/drivers/block/virtio_blk.ko", Depends: []string{"virtio", "virtio_ring"}},
		{Name: "virtio_ring", Path: "kernel/drivers/virtio/virtio_ring.ko"},
		{Name: "virtio", Path: "kernel/drivers/virtio/virtio.ko", Depends: []string{"virtio_ring"}},
		{Name: "broken", Path: "kernel/broken.ko", Depends: []string{"absent"}},
		{Name: "loop_a", Path: "kernel/a.ko", Depends: []string{"loop_b"}},
		{Name: "loop_b", Path: "kernel/b.ko", Depends: []string{"loop_a"}},
		// libcrc32c asks the crypto API for crc32c when it loads: a soft dependency, resolved
		// by alias to the generic implementation; one nobody provides is left out.
		{Name: "libcrc32c", Path: "kernel/lib/libcrc32c.ko", SoftPre: []string{"crc32c", "built-in-or-absent"}},
		{Name: "crc32c_intel", Path: "kernel/arch/x86/crypto/crc32c-intel.ko", Aliases: []string{"crc32c", "crypto-crc32c"}},
		{Name: "crc32c_generic", Path: "kernel/crypto/crc32c_generic.ko", Aliases: []string{"crc32c", "crypto-crc32c"}},
		{Name: "erofs", Path: "kernel/fs/erofs/erofs.ko", Depends: []string{"libcrc32c"}},
	} {
		ix[m.Name] = m
	}
	return ix
}

func names(ms []Module) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestClosure(t *testing.T) {
	ix := testIndex()
	cases := []struct {
		wanted []string
		order  []string
		err    string
	}{
		{[]string{"dm-verity"}, []string{"dm_bufio", "dm_mod", "dm_verity"}, ""},
		{[]string{"virtio_blk", "dm_mod"}, []string{"virtio_ring", "virtio", "virtio_blk", "dm_mod"}, ""},
		{[]string{"virtio_ring", "virtio_ring"}, []string{"virtio_ring"}, ""},
		{[]string{"nope"}, nil, "module nope not found"},
		{[]string{"broken"}, nil, "module absent (needed by broken) not found"},
		{[]string{"loop_a"}, nil, "dependency cycle"},
		// Soft dependencies come along (every module with the alias), before the module.
		{[]string{"erofs"}, []string{"crc32c_generic", "crc32c_intel", "libcrc32c", "erofs"}, ""},
	}
	for _, c := range cases {
		got, err := ix.Closure(c.wanted)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Closure(%v): err %v, want %q", c.wanted, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(names(got), c.order) {
			t.Errorf("Closure(%v) = %v, %v; want %v", c.wanted, names(got), err, c.order)
		}
	}
}

func TestModulesDep(t *testing.T) {
	ix := testIndex()
	mods, err := ix.Closure([]string{"dm-verity", "virtio_blk"})
	if err != nil {
		t.Fatal(err)
	}
	dep, err := ix.ModulesDep(mods)
	if err != nil {
		t.Fatal(err)
	}
	want := `kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/md/dm-bufio.ko:
kernel/drivers/md/dm-mod.ko:
kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-mod.ko kernel/drivers/md/dm-bufio.ko
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
`
	if string(dep) != want {
		t.Fatalf("modules.dep:\n%s\nwant:\n%s", dep, want)
	}
}

// TestReadModinfo builds a real ELF object with a .modinfo section, as the kernel build does.
func TestReadModinfo(t *testing.T) {
	cc := testutil.Tool(t, "cc", "gcc")
	dir := t.TempDir()
	src := filepath.Join(dir, "m.c")
	os.WriteFile(src, []byte(`__attribute__((section(".modinfo"), used)) static const char info[] =
		"license=GPL\0depends=dm-mod,dm_bufio\0name=dm_verity\0alias=dm-verity-target\0softdep=pre: crc32c post: other\0softdep=pre: x\0vermagic=6.1.0 SMP mod_unload\0";`), 0o644)
	obj := filepath.Join(dir, "dm-verity.ko")
	testutil.Run(t, cc, "-c", "-o", obj, src)
	f, _ := os.Open(obj)
	defer f.Close()
	ix := Index{}
	if err := ix.Add("kernel/drivers/md/dm-verity.ko", f); err != nil {
		t.Fatal(err)
	}
	m := ix["dm_verity"]
	if !reflect.DeepEqual(m.Depends, []string{"dm_mod", "dm_bufio"}) || !reflect.DeepEqual(m.Aliases, []string{"dm-verity-target"}) {
		t.Fatalf("depends %v, aliases %v", m.Depends, m.Aliases)
	}
	if !reflect.DeepEqual(m.SoftPre, []string{"crc32c", "x"}) {
		t.Fatalf("softdep pre %v, want crc32c and x (not the post one)", m.SoftPre)
	}
	if err := ix.Add("x.ko", strings.NewReader("not elf")); err == nil || !strings.Contains(err.Error(), "x.ko") {
		t.Fatalf("bad module: %v", err)
	}
}

func TestModulesAlias(t *testing.T) {
	mods := []Module{
		{Name: "tun", Aliases: []string{"devname:net/tun", "char-major-10-200"}},
		{Name: "dummy", Aliases: []string{"rtnl-link-dummy"}},
		{Name: "plain"},
	}
	want := "alias char-major-10-200 tun\nalias devname:net/tun tun\nalias rtnl-link-dummy dummy\n"
	if got := string(ModulesAlias(mods)); got != want {
		t.Errorf("modules.alias:\n%s\nwant:\n%s", got, want)
	}
}

// A hardware module's dependencies are on demand unless a boot module needs them too.
func TestModulesOnDemand(t *testing.T) {
	ix := testIndex()
	ix["virtio_scsi"] = Module{Name: "virtio_scsi", Path: "kernel/drivers/scsi/virtio_scsi.ko", Depends: []string{"virtio", "scsi_mod"}}
	ix["scsi_mod"] = Module{Name: "scsi_mod", Path: "kernel/drivers/scsi/scsi_mod.ko"}
	cases := []struct {
		boot, hardware []string
		want           string
	}{
		{[]string{"dm-verity"}, []string{"virtio_blk"}, "virtio\nvirtio_blk\nvirtio_ring\n"},
		{[]string{"dm-verity", "virtio_blk"}, []string{"virtio_scsi"}, "scsi_mod\nvirtio_scsi\n"},
		{[]string{"dm-verity"}, []string{"virtio_blk", "virtio_scsi"}, "scsi_mod\nvirtio\nvirtio_blk\nvirtio_ring\nvirtio_scsi\n"},
		{[]string{"dm-verity"}, nil, ""},
	}
	for _, c := range cases {
		boot, err := ix.Closure(c.boot)
		if err != nil {
			t.Fatal(err)
		}
		hw, err := ix.Closure(c.hardware)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(ModulesOnDemand(boot, hw)); got != c.want {
			t.Errorf("boot %v, hardware %v: modules.ondemand\n%s\nwant\n%s", c.boot, c.hardware, got, c.want)
		}
	}
}

// modules.dep leaves soft dependencies out (a module must load without them); modules.softdep
// names them, every candidate, for the loader to try first.
func TestSoftdeps(t *testing.T) {
	ix := testIndex()
	mods, err := ix.Closure([]string{"erofs"})
	if err != nil {
		t.Fatal(err)
	}
	dep, err := ix.ModulesDep(mods)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(dep), "crc32c") && !strings.HasPrefix(string(dep), "kernel/arch/x86/crypto/crc32c-intel.ko:\n") {
		for _, line := range strings.Split(string(dep), "\n") {
			if strings.HasPrefix(line, "kernel/lib/libcrc32c.ko:") && line != "kernel/lib/libcrc32c.ko:" {
				t.Errorf("modules.dep makes a soft dependency hard: %q", line)
			}
		}
	}
	if got, want := string(ix.ModulesSoftdep(mods)), "softdep libcrc32c pre: crc32c_generic crc32c_intel\n"; got != want {
		t.Errorf("modules.softdep %q, want %q", got, want)
	}
}
