// Package debinstall installs Debian packages into a root tree the way Ballast needs them, without
// dpkg: their files unpacked (documentation dropped), nothing of theirs run, and the few things
// their maintainer scripts would have done done explicitly (MaintainerWork).
package debinstall

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/ballast-os/ballast/builder/rootfs"
	"github.com/ballast-os/ballast/packages/deb"
)

// Excluded are never installed, and dependencies on them count as met: they exist to run
// maintainer scripts (debconf, dpkg, perl-base), to build initramfs images Ballast makes itself
// (initramfs-tools and its alternative, linux-base), or to manage a dynamic linker cache that an
// image without a package manager never rebuilds (libc-bin).
var Excluded = []string{"debconf", "dpkg", "initramfs-tools", "libc-bin", "linux-base", "linux-initramfs-tool", "perl-base"}

// Installed is what Install learnt about a package besides its files.
type Installed struct {
	// Copyright is /usr/share/doc/<pkg>/copyright, read before the docs are dropped; nil when the
	// package has none of its own.
	Copyright []byte
	// DocLink is the target of /usr/share/doc/<pkg> when the package ships it as a symlink to
	// another package's documentation (libgcc-s1 → gcc-12-base), where its copyright then is.
	DocLink string
}

// Install unpacks a Debian package's files into the tree (merged /usr through the tree's
// symlinks), dropping documentation. Maintainer scripts are not run.
func Install(t *rootfs.Tree, pkg, debPath string) (Installed, error) {
	var got Installed
	f, err := os.Open(debPath)
	if err != nil {
		return got, fmt.Errorf("package %s: %w", pkg, err)
	}
	defer f.Close()
	docDir := "/usr/share/doc/" + pkg
	err = deb.Walk(f, func(h *tar.Header, body io.Reader) error {
		p := "/" + strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		switch {
		case p == docDir+"/copyright" && h.Typeflag == tar.TypeReg:
			c, err := io.ReadAll(io.LimitReader(body, 1<<20))
			got.Copyright = c
			return err
		case p == docDir && h.Typeflag == tar.TypeSymlink:
			got.DocLink = path.Base(h.Linkname)
		}
		if rootfs.Dropped(p) {
			return nil
		}
		mode := fs.FileMode(h.Mode) & fs.ModePerm
		switch h.Typeflag {
		case tar.TypeDir:
			return t.Mkdir(p, mode, pkg)
		case tar.TypeSymlink:
			return t.AddSymlink(p, h.Linkname, pkg)
		case tar.TypeReg:
			data, err := io.ReadAll(body)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			return t.AddFile(p, data, mode, pkg)
		}
		return nil
	})
	if err != nil {
		return got, fmt.Errorf("package %s: %w", pkg, err)
	}
	return got, nil
}
