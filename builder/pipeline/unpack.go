package pipeline

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ballast-os/ballast/packages/deb"
)

// unpackCached unpacks a verified .deb into the cache once (keyed by its sha256) and returns the
// directory. The marker file makes an interrupted unpack start over instead of being trusted.
func unpackCached(cacheDir, debPath, sha string) (string, error) {
	dir := filepath.Join(cacheDir, "unpacked", sha)
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	os.RemoveAll(dir)
	if err := unpackDeb(debPath, dir); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

func unpackDeb(debPath, dir string) error {
	f, err := os.Open(debPath)
	if err != nil {
		return err
	}
	defer f.Close()
	err = deb.Walk(f, func(h *tar.Header, body io.Reader) error {
		name := filepath.Clean(h.Name)
		if strings.HasPrefix(name, "..") {
			return fmt.Errorf("entry %q escapes the package root", h.Name)
		}
		dst := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			return os.MkdirAll(dst, 0o755)
		case tar.TypeSymlink:
			os.MkdirAll(filepath.Dir(dst), 0o755)
			return os.Symlink(h.Linkname, dst)
		case tar.TypeLink:
			os.MkdirAll(filepath.Dir(dst), 0o755)
			return os.Link(filepath.Join(dir, filepath.Clean(h.Linkname)), dst)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(dst), 0o755)
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
		return nil // device nodes and fifos have no place in an image root
	})
	if err != nil {
		return fmt.Errorf("unpack %s: %w", filepath.Base(debPath), err)
	}
	return nil
}
