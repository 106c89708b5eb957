package filecon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// XattrName is the attribute the kernel keeps a file's SELinux context in.
const XattrName = "security.selinux"

// Options tune Relabel; zero fields take the defaults in brackets.
type Options struct {
	// Xattr is the attribute labels are read from and written to [XattrName]. Tests use a user.*
	// name, which the kernel allows on regular files and directories only: with such a name,
	// other files are left alone.
	Xattr string
	// Keep, when it returns true, leaves the file at path (as the running system sees it) with
	// its current label; a kept directory is not entered. For labels something else gives at run
	// time, like a container's categories.
	Keep func(path, current string) bool
}

// Result counts what Relabel did.
type Result struct {
	Files      int // files looked at
	Relabelled int // files whose label was set
	Kept       int // files Keep kept (a kept directory counts once)
}

// Relabel labels every file of the tree at root+under that is on the same filesystem as
// root+under as specs say for its path under `under`, where a label differs. Files no line
// labels (or <<none>>) are left as they are. The top directory is labelled last, so a caller
// that checks it to decide whether to relabel sees an interrupted run as not done.
func Relabel(root, under string, specs *Specs, opts Options) (Result, error) {
	if opts.Xattr == "" {
		opts.Xattr = XattrName
	}
	var res Result
	top := filepath.Join(root, under)
	var st unix.Stat_t
	if err := unix.Lstat(top, &st); err != nil {
		return res, fmt.Errorf("relabel %s: %w", under, err)
	}
	dev := uint64(st.Dev)
	var topMode fs.FileMode
	err := filepath.WalkDir(top, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("relabel: %w", err)
		}
		rel, _ := filepath.Rel(top, full)
		p := filepath.Join(under, rel)
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("relabel: %w", err)
		}
		if full == top {
			topMode = info.Mode()
			res.Files++
			return nil
		}
		if s, ok := info.Sys().(*syscall.Stat_t); ok && uint64(s.Dev) != dev {
			// Another filesystem's root: its labels are its own. (SkipDir on a file would
			// skip the rest of its directory.)
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		res.Files++
		kept, changed, err := label(full, p, info.Mode(), specs, opts)
		if err != nil {
			return err
		}
		if changed {
			res.Relabelled++
		}
		if kept {
			res.Kept++
			if d.IsDir() {
				return fs.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	_, changed, err := label(top, under, topMode, specs, Options{Xattr: opts.Xattr})
	if changed {
		res.Relabelled++
	}
	return res, err
}

// label sets the label of the file at full (path p on the running system) if it differs.
func label(full, p string, mode fs.FileMode, specs *Specs, opts Options) (kept, changed bool, err error) {
	if !Labellable(opts.Xattr, mode) {
		return false, false, nil
	}
	want, ok := specs.Lookup(p, mode)
	if !ok {
		return false, false, nil
	}
	cur, err := Get(full, opts.Xattr)
	if errors.Is(err, fs.ErrNotExist) {
		return false, false, nil // gone since the walk read its directory (a device node)
	}
	if err != nil {
		return false, false, fmt.Errorf("relabel %s: %w", p, err)
	}
	if cur == want {
		return false, false, nil
	}
	if opts.Keep != nil && opts.Keep(p, cur) {
		return true, false, nil
	}
	if err := Set(full, opts.Xattr, want); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, false, fmt.Errorf("relabel %s: %w", p, err)
	}
	return false, true, nil
}

// Labellable reports whether the kernel lets a file of this mode carry the attribute xattr:
// user.* attributes are for regular files and directories only.
func Labellable(xattr string, mode fs.FileMode) bool {
	return !strings.HasPrefix(xattr, "user.") || mode.IsRegular() || mode.IsDir()
}

// Get returns the label of the file at path itself (a symlink's own), "" if it has none. The
// kernel hands security.selinux out with a trailing NUL; it is dropped.
func Get(path, xattr string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, xattr, buf)
		switch {
		case errors.Is(err, unix.ENODATA):
			return "", nil
		case errors.Is(err, unix.ERANGE):
			buf = make([]byte, 2*len(buf))
			continue
		case err != nil:
			return "", fmt.Errorf("getxattr %s %s: %w", path, xattr, err)
		}
		return strings.TrimRight(string(buf[:n]), "\x00"), nil
	}
}

// Set labels the file at path itself. The value carries a trailing NUL, as libselinux writes
// it; the kernel takes it either way.
func Set(path, xattr, context string) error {
	if err := unix.Lsetxattr(path, xattr, append([]byte(context), 0), 0); err != nil {
		return fmt.Errorf("setxattr %s %s=%s: %w", path, xattr, context, err)
	}
	return nil
}

// SetIfDiffers labels the file at path as context unless it is labelled so already; it reports
// whether it changed the label.
func SetIfDiffers(path, xattr, context string) (bool, error) {
	cur, err := Get(path, xattr)
	if err != nil {
		return false, err
	}
	if cur == context {
		return false, nil
	}
	return true, Set(path, xattr, context)
}

// Check compares the labels of the given paths (as the running system sees them, under root)
// with specs and returns the first that differs, "" if none does. Missing paths are skipped.
func Check(root string, paths []string, specs *Specs, xattr string) (string, error) {
	if xattr == "" {
		xattr = XattrName
	}
	for _, p := range paths {
		full := filepath.Join(root, p)
		fi, err := os.Lstat(full)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		want, ok := specs.Lookup(p, fi.Mode())
		if !ok {
			continue
		}
		cur, err := Get(full, xattr)
		if err != nil {
			return "", err
		}
		if cur != want {
			return p, nil
		}
	}
	return "", nil
}
