package vmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCpio lets GNU cpio, an independent reader, list and extract what the writer produced.
func TestCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio not installed")
	}
	w := newCpio()
	w.dir("dev")
	w.charDev("dev/console", 5, 1)
	w.data("init", []byte("#!/bin/true\n"), 0o755)
	w.data("lib/odd", []byte("12345"), 0o644) // length not a multiple of 4: exercises padding
	w.data("lib/last", []byte("x"), 0o600)
	archive := filepath.Join(t.TempDir(), "a.cpio")
	if err := os.WriteFile(archive, w.finish(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cpio", "-itv", "-F", archive)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	for _, want := range []string{"crw-------", "5,   1", "dev/console", "-rwxr-xr-x", "init", "lib/odd", "lib/last"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("cpio listing lacks %q:\n%s", want, out)
		}
	}
	dir := t.TempDir()
	// Everything but the device node, which only root could create.
	x := exec.Command("cpio", "-id", "--no-absolute-filenames", "-f", "dev/console")
	x.Dir = dir
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x.Stdin = f
	if out, err := x.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}
	for name, want := range map[string]string{"init": "#!/bin/true\n", "lib/odd": "12345", "lib/last": "x"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", name, b, err, want)
		}
	}
}

// TestResolveModules orders dm-verity after its dependencies, using the guest kernel's modules
// when they are there.
func TestResolveModules(t *testing.T) {
	_, modDir, err := kernelAndModules()
	if err != nil {
		t.Skip(err)
	}
	kos, err := resolveModules(modDir, []string{"dm-verity", "virtio_blk", "dm_mod"})
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, ko := range kos {
		name := canonical(strings.TrimSuffix(filepath.Base(ko), ".ko"))
		if _, dup := pos[name]; dup {
			t.Errorf("%s listed twice", name)
		}
		pos[name] = i
	}
	for _, before := range [][2]string{{"dm_mod", "dm_bufio"}, {"dm_bufio", "dm_verity"}, {"virtio", "virtio_blk"}, {"virtio_ring", "virtio_blk"}} {
		a, okA := pos[before[0]]
		b, okB := pos[before[1]]
		if !okA || !okB || a > b {
			t.Errorf("%s must come before %s: %v", before[0], before[1], kos)
		}
	}
	if _, err := resolveModules(modDir, []string{"no-such-module"}); err == nil {
		t.Error("unknown module resolved")
	}
}
