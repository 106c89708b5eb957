package rootfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

func TestTreeMergedUsr(t *testing.T) {
	tr := New()
	must(t, tr.AddSymlink("/bin", "usr/bin", "ballast"))
	must(t, tr.Mkdir("/usr/bin", 0o755, "ballast"))
	must(t, tr.AddFile("/bin/busybox", []byte("bb"), 0o755, "busybox-static"))
	if _, ok := tr.Get("/usr/bin/busybox"); !ok {
		t.Fatalf("file under /bin should land in /usr/bin: %v", tr.Paths())
	}
	err := tr.AddFile("/usr/bin/busybox", []byte("x"), 0o755, "other")
	if err == nil || !strings.Contains(err.Error(), "busybox-static") || !strings.Contains(err.Error(), "other") {
		t.Fatalf("conflict should name both origins, got %v", err)
	}
	must(t, tr.AddFile("/usr/share/doc/busybox/copyright", []byte("c"), 0o644, "busybox-static"))
	tr.Remove("/usr/share/doc")
	if _, ok := tr.Get("/usr/share/doc/busybox/copyright"); ok {
		t.Fatal("Remove left a child behind")
	}
	if err := tr.AddFile("/usr/bin/busybox/x", nil, 0o644, "x"); err == nil {
		t.Fatal("a file below a file must fail")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestErofsLabels builds an image as the current user and, where loop mounts work (root), reads the
// labels back through the kernel's EROFS driver.
func TestErofsLabels(t *testing.T) {
	testutil.Tool(t, "mkfs.erofs", "erofs-utils")
	tr := New()
	must(t, tr.AddSymlink("/sbin", "usr/sbin", "ballast"))
	must(t, tr.AddFile("/sbin/init", []byte("#init"), 0o755, "ballast"))
	must(t, tr.AddFile("/usr/bin/apiserver", bytes.Repeat([]byte("api"), 10000), 0o755, "ballast"))
	must(t, tr.Mkdir("/etc", 0o755, "ballast"))
	must(t, tr.Mkdir("/local", 0o755, "ballast"))
	dir := t.TempDir()
	must(t, tr.Write(filepath.Join(dir, "tree")))
	img := filepath.Join(dir, "root.erofs")
	// secilc's format: general entries first, the more specific ones after them.
	contexts := filepath.Join(dir, "file_contexts")
	must(t, os.WriteFile(contexts, []byte("/.*\tsystem_u:object_r:os_t:s0\n/etc\t-d\tsystem_u:object_r:etc_t:s0\n"+
		"/local\t-d\tsystem_u:object_r:local_t:s0\n/usr/sbin/init\t--\tsystem_u:object_r:init_exec_t:s0\n"+
		"/usr/bin/apiserver\t--\tsystem_u:object_r:api_exec_t:s0\n"), 0o644))
	opts := ErofsOptions{FileContexts: contexts, UUID: "6b1d3c4e-0000-4000-8000-000000000001", Epoch: 1700000000, Compression: "lz4hc"}
	must(t, MkfsErofs(filepath.Join(dir, "tree"), img, opts))
	first, _ := os.ReadFile(img)
	must(t, MkfsErofs(filepath.Join(dir, "tree"), img, opts))
	second, _ := os.ReadFile(img)
	if !bytes.Equal(first, second) {
		t.Fatal("two builds of the same tree differ")
	}
	if len(first)%4096 != 0 {
		t.Fatalf("image size %d is not a multiple of 4096", len(first))
	}

	testutil.Root(t, "reading labels back needs a loop mount")
	mnt := t.TempDir()
	out, err := exec.Command("mount", "-o", "loop,ro", "-t", "erofs", img, mnt).CombinedOutput()
	testutil.Need(t, err == nil, "loop mount of EROFS: %v %s", err, out)
	defer exec.Command("umount", mnt).Run()
	for path, want := range map[string]string{
		"/":                  "system_u:object_r:os_t:s0",
		"/usr/sbin/init":     "system_u:object_r:init_exec_t:s0",
		"/usr/bin/apiserver": "system_u:object_r:api_exec_t:s0",
		"/etc":               "system_u:object_r:etc_t:s0",
		"/local":             "system_u:object_r:local_t:s0",
	} {
		buf := make([]byte, 256)
		n, err := getxattr(filepath.Join(mnt, path), "security.selinux", buf)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if got := strings.TrimRight(string(buf[:n]), "\x00"); got != want {
			t.Errorf("%s labelled %q, want %q", path, got, want)
		}
	}
	st, err := os.Stat(filepath.Join(mnt, "usr/bin/apiserver"))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("apiserver mode: %v %v", st, err)
	}
}

func TestCheckNoInterpreters(t *testing.T) {
	cases := []struct {
		name, path, origin string
		bad                bool
	}{
		{"apiserver", "/usr/bin/apiserver", "ballast", false},
		{"dash", "/usr/bin/dash", "dash", true},
		{"sh link", "/usr/bin/sh", "dash", true},
		{"busybox", "/usr/bin/busybox", "busybox-static", true},
		{"python3.11", "/usr/bin/python3.11", "python3.11-minimal", true},
		{"perl", "/usr/bin/perl", "perl-base", true},
		{"mawk", "/usr/bin/mawk", "mawk", true},
		{"shell-ish name", "/usr/sbin/shutdown", "ballast", false},
		{"library", "/usr/lib/x86_64-linux-gnu/libperl.so.5.36", "libperl5.36", false},
	}
	for _, c := range cases {
		tr := New()
		must(t, tr.AddFile(c.path, []byte("x"), 0o755, c.origin))
		err := tr.CheckNoInterpreters()
		if c.bad != (err != nil) {
			t.Errorf("%s: err = %v", c.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), c.origin) {
			t.Errorf("%s: error does not name the package: %v", c.name, err)
		}
	}
}
