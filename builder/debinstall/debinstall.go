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
// image without a package manager never rebuilds (libc-bin). openssl is a dependency of
// ca-certificates only for update-ca-certificates, whose job (the bundle) MaintainerWork does
// without it; nothing else in an image runs the openssl tool or links its libssl3/libcrypto
// (Ballast's programs and the runtime are Go, with Go's own TLS), so leaving it out also keeps
// out 6.7 MB of libraries, engines and perl scripts (c_rehash, CA.pl).
var Excluded = []string{"debconf", "dpkg", "initramfs-tools", "libc-bin", "linux-base", "linux-initramfs-tool", "openssl", "perl-base"}

// Unused are files of installed packages that nothing in a Ballast image reads, loads or runs;
// Install leaves them out as it does documentation (rootfs.Dropped). Each is a path.Match pattern
// on the merged-/usr path (a package's /lib/x is /usr/lib/x); a pattern naming a directory drops
// everything below it. Before adding one, check that no file in the image has it as NEEDED,
// dlopens it or runs it, and that what the image tests run (nft, iptables-nft with the CNI
// plugins' rules, mkfs.ext4, the CA bundle) still works.
var Unused = []string{
	// glibc's iconv modules (8 MB): loaded only by iconv_open for a character set glibc does not
	// build in (ASCII, UTF-8, UTF-16, UTF-32, UCS-2 and UCS-4 are). Nothing in the image calls iconv:
	// the Go programs do not use glibc, the C tools of e2fsprogs, iptables and nftables never name
	// a character set, and the image has no locales.
	"/usr/lib/*-linux-gnu/gconv",
	// glibc's vector math library (1 MB), for programs built with vectorised math loops: nothing in
	// the image has it as NEEDED.
	"/usr/lib/*-linux-gnu/libmvec.so.1",
	// glibc's debugging aids, used through LD_PRELOAD or by a debugger (malloc debugging,
	// memusage, pcprofile, libthread_db): the image has neither a debugger nor a way to preload.
	"/usr/lib/*-linux-gnu/libc_malloc_debug.so.0",
	"/usr/lib/*-linux-gnu/libmemusage.so",
	"/usr/lib/*-linux-gnu/libpcprofile.so",
	"/usr/lib/*-linux-gnu/libthread_db.so.1",
	// Units, udev rules and cron jobs (e2scrub, nftables.service): Ballast has no systemd, udev or
	// cron; its init starts the services of the program table.
	"/usr/lib/systemd",
	"/usr/lib/udev",
	"/etc/cron.d",
	// e2scrub: bash scripts that check ext4 on LVM snapshots; the image has neither bash nor LVM.
	"/usr/sbin/e2scrub",
	"/usr/sbin/e2scrub_all",
	"/usr/lib/*-linux-gnu/e2fsprogs",
	// initramfs-tools hooks (from busybox-static): Ballast builds its initramfs itself.
	"/usr/share/initramfs-tools",
}

// IsUnused reports whether the package path p (as the .deb names it) is one of Unused or below one.
func IsUnused(p string) bool {
	p = usrMerged(path.Clean("/" + p))
	for q := p; q != "/"; q = path.Dir(q) {
		for _, pat := range Unused {
			if ok, _ := path.Match(pat, q); ok {
				return true
			}
		}
	}
	return false
}

// usrMerged is where p lands in the root's merged /usr (rootfs's /bin → usr/bin and so on).
func usrMerged(p string) string {
	for _, d := range []string{"/bin", "/sbin", "/lib", "/lib64"} {
		if p == d || strings.HasPrefix(p, d+"/") {
			return "/usr" + p
		}
	}
	return p
}

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
// symlinks), dropping documentation and the Unused files. Maintainer scripts are not run.
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
		if rootfs.Dropped(p) || IsUnused(p) {
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
