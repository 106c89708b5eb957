package filecon

import (
	"errors"
	"github.com/ballast-os/ballast/tests/testutil"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

const testXattr = "user.selinux-test"

// tree makes root/local with files, and skips when the filesystem of the test's directory has no
// user xattrs.
func tree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"local/var/lib/containerd/snap", "local/var/lib/ballast", "local/host-containers/admin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"local/a", "local/var/lib/ballast/state", "local/var/lib/containerd/snap/f"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a", filepath.Join(root, "local/link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(root, "local/a"), testXattr, []byte("x"), 0); errors.Is(err, unix.ENOTSUP) {
		testutil.Need(t, false, "user xattrs on %s (a tmpfs or ext4 TMPDIR)", root)
	} else if err != nil {
		t.Fatal(err)
	}
	return root
}

func labels(t *testing.T, root string, paths ...string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, p := range paths {
		l, err := Get(filepath.Join(root, p), testXattr)
		if err != nil {
			t.Fatal(err)
		}
		m[p] = l
	}
	return m
}

func TestRelabel(t *testing.T) {
	s := load(t)
	root := tree(t)
	res, err := Relabel(root, "/local", s, Options{Xattr: testXattr})
	if err != nil {
		t.Fatal(err)
	}
	// 12 files; the symlink is looked at, but a user.* xattr cannot be set on it.
	if res.Files != 12 || res.Relabelled != 11 || res.Kept != 0 {
		t.Errorf("result %+v", res)
	}
	want := map[string]string{
		"/local":                           ctx("local_t"),
		"/local/a":                         ctx("local_t"),
		"/local/var/lib":                   ctx("var_lib_t"),
		"/local/var/lib/ballast/state":     ctx("var_lib_t"),
		"/local/var/lib/containerd/snap/f": ctx("container_file_t"),
	}
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	got := labels(t, root, paths...)
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s labelled %q, want %q", p, got[p], w)
		}
	}
	// A second run finds nothing to do.
	if res, err := Relabel(root, "/local", s, Options{Xattr: testXattr}); err != nil || res.Relabelled != 0 {
		t.Errorf("second run: %+v, %v", res, err)
	}
	if p, err := Check(root, []string{"/local", "/local/var", "/local/nothing"}, s, testXattr); p != "" || err != nil {
		t.Errorf("Check after a relabel = %q, %v", p, err)
	}
}

// A container's own labels are kept, and what is below a kept directory is not looked at.
func TestRelabelKeep(t *testing.T) {
	s := load(t)
	root := tree(t)
	mcs := "system_u:object_r:container_file_t:s0:c1,c2"
	for _, p := range []string{"local/var/lib/containerd/snap", "local/var/lib/containerd/snap/f"} {
		if err := Set(filepath.Join(root, p), testXattr, mcs); err != nil {
			t.Fatal(err)
		}
	}
	var asked []string
	keep := func(path, current string) bool {
		asked = append(asked, path)
		return Type(current) == "container_file_t"
	}
	res, err := Relabel(root, "/local", s, Options{Xattr: testXattr, Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kept != 1 {
		t.Errorf("result %+v, asked %q", res, asked)
	}
	got := labels(t, root, "/local/var/lib/containerd/snap", "/local/var/lib/containerd/snap/f", "/local/var/lib/containerd")
	if got["/local/var/lib/containerd/snap"] != mcs || got["/local/var/lib/containerd/snap/f"] != mcs {
		t.Errorf("container labels changed: %q", got)
	}
	if got["/local/var/lib/containerd"] != ctx("container_file_t") {
		t.Errorf("/local/var/lib/containerd = %q", got["/local/var/lib/containerd"])
	}
}

// The top directory is labelled last: Check still sees a run that stopped half way as not done.
func TestCheckSeesUnlabelledTop(t *testing.T) {
	s := load(t)
	root := tree(t)
	if p, err := Check(root, []string{"/local", "/local/var"}, s, testXattr); p != "/local" || err != nil {
		t.Errorf("Check on a new tree = %q, %v", p, err)
	}
	if err := Set(filepath.Join(root, "local/var"), testXattr, ctx("local_t")); err != nil {
		t.Fatal(err)
	}
	if p, _ := Check(root, []string{"/local/var"}, s, testXattr); p != "" {
		t.Errorf("Check = %q", p)
	}
}

// Get hands a label out without the kernel's trailing NUL, whether it was written with one or not.
func TestGetDropsNUL(t *testing.T) {
	root := tree(t)
	f := filepath.Join(root, "local/a")
	for _, v := range []string{"ctx\x00", "ctx"} {
		if err := unix.Lsetxattr(f, testXattr, []byte(v), 0); err != nil {
			t.Fatal(err)
		}
		if got, err := Get(f, testXattr); got != "ctx" || err != nil {
			t.Errorf("Get after writing %q = %q, %v", v, got, err)
		}
	}
	if changed, err := SetIfDiffers(f, testXattr, "ctx"); changed || err != nil {
		t.Errorf("SetIfDiffers on an equal label = %v, %v", changed, err)
	}
}
