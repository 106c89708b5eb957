package deb

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// UnpackCached unpacks a verified .deb into cacheDir/unpacked/<sha256> once and returns that
// directory. The caller has checked the file against sha. A marker file is written last, so an
// interrupted unpack starts over instead of being trusted.
func UnpackCached(cacheDir, debPath, sha string) (string, error) {
	dir := filepath.Join(cacheDir, "unpacked", sha)
	marker := filepath.Join(dir, ".complete")
	if _, err := os.Stat(marker); err == nil {
		return dir, nil
	}
	// Processes that want the same package at once (test binaries run in parallel) take turns:
	// otherwise one would remove the tree another is still writing.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("unpack %s: %w", filepath.Base(debPath), err)
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("unpack %s: %w", filepath.Base(debPath), err)
	}
	defer lock.Close() // releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("unpack %s: lock: %w", filepath.Base(debPath), err)
	}
	if _, err := os.Stat(marker); err == nil {
		return dir, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("unpack %s: %w", filepath.Base(debPath), err)
	}
	if err := Unpack(debPath, dir); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644); err != nil {
		return "", fmt.Errorf("unpack %s: %w", filepath.Base(debPath), err)
	}
	return dir, nil
}

// Unpack writes a .deb's files under dir. Device nodes and fifos are skipped: they have no place
// in an image. An entry that would land outside dir is an error.
func Unpack(debPath, dir string) error {
	f, err := os.Open(debPath)
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	defer f.Close()
	mkparent := func(p string) error { return os.MkdirAll(filepath.Dir(p), 0o755) }
	err = Walk(f, func(h *tar.Header, body io.Reader) error {
		name := filepath.Clean(h.Name)
		if strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			return fmt.Errorf("entry %q escapes the package root", h.Name)
		}
		dst := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			return os.MkdirAll(dst, 0o755)
		case tar.TypeSymlink:
			if err := mkparent(dst); err != nil {
				return err
			}
			return os.Symlink(h.Linkname, dst)
		case tar.TypeLink:
			target := filepath.Clean(h.Linkname)
			if strings.HasPrefix(target, "..") || filepath.IsAbs(target) {
				return fmt.Errorf("hard link %q → %q escapes the package root", h.Name, h.Linkname)
			}
			if err := mkparent(dst); err != nil {
				return err
			}
			return os.Link(filepath.Join(dir, target), dst)
		case tar.TypeReg:
			if err := mkparent(dst); err != nil {
				return err
			}
			out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755|0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, body); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("unpack %s: %w", filepath.Base(debPath), err)
	}
	return nil
}
