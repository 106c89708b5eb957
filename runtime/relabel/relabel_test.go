package relabel

import (
	"errors"
	"github.com/ballast-os/ballast/tests/testutil"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

const label = "system_u:object_r:container_file_t:s0:c1,c2"

// testXattr is an attribute this kernel stores without SELinux: trusted.* as root (it may be
// set on symlinks too), else user.*, which a symlink cannot carry.
func testXattr(t *testing.T) (name string, symlinks bool) {
	t.Helper()
	probe := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, x := range []string{"trusted.ballast-test", "user.ballast-test"} {
		if err := unix.Setxattr(probe, x, []byte("x"), 0); err == nil {
			return x, x == "trusted.ballast-test"
		}
	}
	testutil.Need(t, false, "a TMPDIR whose file system keeps trusted.* or user.* attributes (tmpfs, ext4)")
	return "", false
}

func get(t *testing.T, xattr, path string) string {
	t.Helper()
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(path, xattr, buf)
	if errors.Is(err, unix.ENODATA) {
		return ""
	}
	if err != nil {
		t.Fatalf("lgetxattr %s: %v", path, err)
	}
	return string(buf[:n])
}

func TestTree(t *testing.T) {
	xattr, symlinks := testXattr(t)
	l := Labeler{Xattr: xattr}
	base := t.TempDir()
	root := filepath.Join(base, "storage")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{root + "/a/b/c", root + "/mnt", outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := []string{root + "/top", root + "/a/one", root + "/a/b/c/deep", outside + "/secret"}
	for _, f := range files {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(root+"/a/fifo", 0o600); err != nil {
		t.Fatal(err)
	}
	want := []string{root, root + "/a", root + "/a/b", root + "/a/b/c", root + "/top", root + "/a/one", root + "/a/b/c/deep", root + "/a/fifo"}
	if symlinks {
		// A container may leave symlinks to anywhere; they are labelled, not what they name.
		for name, target := range map[string]string{"link-file": outside + "/secret", "link-dir": outside} {
			if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
				t.Fatal(err)
			}
			want = append(want, filepath.Join(root, name))
		}
	}
	mounted := false
	if os.Geteuid() == 0 {
		if err := unix.Mount("relabel-test", root+"/mnt", "tmpfs", 0, "size=64k"); err == nil {
			mounted = true
			t.Cleanup(func() { unix.Unmount(root+"/mnt", unix.MNT_DETACH) })
			if err := os.WriteFile(root+"/mnt/other-fs", []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !mounted {
		t.Log("no tmpfs mounted in the tree (not root): mount points not checked")
		want = append(want, root+"/mnt")
	}
	t.Logf("attribute %s, symlinks %v, mount point %v", xattr, symlinks, mounted)

	if err := l.Tree(root, label); err != nil {
		t.Fatal(err)
	}
	for _, p := range want {
		if got := get(t, xattr, p); got != label {
			t.Errorf("%s: %q, want %q", p, got, label)
		}
	}
	notLabelled := []string{outside, outside + "/secret"}
	if mounted {
		notLabelled = append(notLabelled, root+"/mnt", root+"/mnt/other-fs")
	}
	for _, p := range notLabelled {
		if got := get(t, xattr, p); got != "" {
			t.Errorf("%s labelled %q: the walk left the tree", p, got)
		}
	}

	// The next run's pair replaces the last.
	next := "system_u:object_r:container_file_t:s0:c7,c8"
	if err := l.Tree(root, next); err != nil {
		t.Fatal(err)
	}
	if got := get(t, xattr, root+"/a/b/c/deep"); got != next {
		t.Errorf("relabelled: %q, want %q", got, next)
	}
}

func TestTreeRefusesSymlinkRoot(t *testing.T) {
	xattr, _ := testXattr(t)
	dir := t.TempDir()
	if err := os.Symlink(t.TempDir(), dir+"/root"); err != nil {
		t.Fatal(err)
	}
	if err := (Labeler{Xattr: xattr}).Tree(dir+"/root", label); !errors.Is(err, unix.ENOTDIR) && !errors.Is(err, unix.ELOOP) {
		t.Errorf("Tree through a symlink: %v, want ELOOP or ENOTDIR", err)
	}
}

func TestFile(t *testing.T) {
	xattr, _ := testXattr(t)
	p := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := Labeler{Xattr: xattr}
	if err := l.File(p, label); err != nil {
		t.Fatal(err)
	}
	if got := get(t, xattr, p); got != label {
		t.Errorf("%q, want %q", got, label)
	}
	if err := l.File(p+".absent", label); err == nil {
		t.Error("labelling a missing file succeeded")
	}
	if (Labeler{}).xattr() != SELinuxXattr {
		t.Error("the zero Labeler does not write security.selinux")
	}
}
