// Package relabel sets the SELinux label of a container's files on the host: its persistent
// storage tree and its user-data file, at every start, because the container's category pair
// changes from run to run.
package relabel

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// SELinuxXattr is where the kernel keeps a file's SELinux label.
const SELinuxXattr = "security.selinux"

// Labeler writes labels. The zero value writes SELinuxXattr.
type Labeler struct {
	// Xattr is the attribute written; tests use a user.* or trusted.* one on kernels without
	// SELinux.
	Xattr string
}

func (l Labeler) xattr() string {
	if l.Xattr == "" {
		return SELinuxXattr
	}
	return l.Xattr
}

// File labels one file, not following a symlink.
func (l Labeler) File(path, label string) error {
	if err := unix.Lsetxattr(path, l.xattr(), []byte(label), 0); err != nil {
		return fmt.Errorf("relabel %s: %w", path, err)
	}
	return nil
}

// Tree labels root and everything under it on root's file system: it crosses no mount point
// (what is mounted there is not the container's) and follows no symlink (a symlink is labelled
// itself). It walks by directory descriptors, so a directory renamed or swapped for a symlink
// while it runs cannot lead it outside the tree.
func (l Labeler) Tree(root, label string) error {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("relabel %s: %w", root, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("relabel %s: %w", root, err)
	}
	w := walker{xattr: l.xattr(), label: []byte(label), dev: st.Dev}
	if err := unix.Fsetxattr(fd, w.xattr, w.label, 0); err != nil {
		return fmt.Errorf("relabel %s: %w", root, err)
	}
	return w.dir(fd, root)
}

type walker struct {
	xattr string
	label []byte
	dev   uint64
}

// dir labels the entries of the directory open at fd (path names it in errors).
func (w walker) dir(fd int, path string) error {
	names, err := readNames(fd)
	if err != nil {
		return fmt.Errorf("relabel %s: %w", path, err)
	}
	for _, name := range names {
		p := path + "/" + name
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed since the directory was read
			}
			return fmt.Errorf("relabel %s: %w", p, err)
		}
		if st.Dev != w.dev {
			continue // a mount point
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			// Through the directory's descriptor, not the path: lsetxattr follows no symlink in
			// the last component, and the magic link pins the directory.
			if err := unix.Lsetxattr(fdPath(fd, name), w.xattr, w.label, 0); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("relabel %s: %w", p, err)
			}
			continue
		}
		sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("relabel %s: %w", p, err)
		}
		err = w.subdir(sub, p)
		unix.Close(sub)
		if err != nil {
			return err
		}
	}
	return nil
}

func (w walker) subdir(fd int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("relabel %s: %w", path, err)
	}
	if st.Dev != w.dev {
		return nil // became a mount point since it was looked at
	}
	if err := unix.Fsetxattr(fd, w.xattr, w.label, 0); err != nil {
		return fmt.Errorf("relabel %s: %w", path, err)
	}
	return w.dir(fd, path)
}

func fdPath(fd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(fd) + "/" + name
}

// readNames lists a directory's entries but . and .., reading from fd without closing it.
func readNames(fd int) ([]string, error) {
	// A duplicate: os.File closes its descriptor, and reading moves the offset.
	dup, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}
