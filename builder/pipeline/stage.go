package pipeline

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ballast-os/ballast/builder/kmod"
	"github.com/ballast-os/ballast/builder/rootfs"
	"github.com/ballast-os/ballast/packages/deb"
)

// ImageInfo is /usr/lib/ballast/image.json, read by the system init.
type ImageInfo struct {
	Variant  string   `json:"variant"`
	Version  string   `json:"version"`
	Dev      bool     `json:"dev"`
	Services []string `json:"services"`
	Modules  []string `json:"modules"`
	Kernel   string   `json:"kernel"`
}

// Applets linked to busybox in dev images: enough to look around and to test.
var devApplets = []string{"sh", "ash", "ls", "cat", "echo", "ps", "mount", "umount", "dmesg", "df", "free", "ip",
	"grep", "sed", "awk", "vi", "less", "head", "tail", "find", "stat", "uname", "hostname", "sleep", "poweroff",
	"reboot", "halt", "mkdir", "rm", "cp", "mv", "ln", "touch", "wc", "sort", "id", "env", "top", "wget", "sync"}

func baseTree() (*rootfs.Tree, error) {
	t := rootfs.New()
	for _, l := range [][2]string{{"/bin", "usr/bin"}, {"/sbin", "usr/sbin"}, {"/lib", "usr/lib"}, {"/lib64", "usr/lib64"}} {
		if err := t.AddSymlink(l[0], l[1], "ballast"); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"/usr/bin", "/usr/sbin", "/usr/lib64", "/usr/lib/ballast", "/usr/share/factory/etc",
		"/etc", "/local", "/run", "/proc", "/sys", "/dev", "/var", "/root"} {
		if err := t.Mkdir(d, 0o755, "ballast"); err != nil {
			return nil, err
		}
	}
	if err := t.Mkdir("/tmp", 0o1777, "ballast"); err != nil {
		return nil, err
	}
	return t, nil
}

func addFactoryEtc(t *rootfs.Tree, dev bool) error {
	shell := "/usr/sbin/nologin"
	if dev {
		shell = "/usr/bin/sh"
	}
	files := map[string]string{
		"hosts":         "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
		"passwd":        "root:x:0:0:root:/root:" + shell + "\n",
		"group":         "root:x:0:\n",
		"nsswitch.conf": "hosts: files dns\n",
		"hostname":      "ballast\n",
	}
	for name, body := range files {
		if err := t.AddFile("/usr/share/factory/etc/"+name, []byte(body), 0o644, "ballast"); err != nil {
			return err
		}
	}
	return t.AddSymlink("/usr/share/factory/etc/os-release", "../usr/lib/os-release", "ballast")
}

func addModules(t *rootfs.Tree, k *kernelTree, dest string, mods []kmod.Module, dep []byte) error {
	for _, m := range mods {
		if err := t.AddHostFile(path.Join(dest, m.Path), filepath.Join(k.ModDir, filepath.FromSlash(m.Path)), 0o644, "kernel"); err != nil {
			return err
		}
	}
	return t.AddFile(path.Join(dest, "modules.dep"), dep, 0o644, "kernel")
}

// addDeb unpacks a Debian package's files into the tree (merged /usr via the tree's symlinks),
// dropping documentation. Maintainer scripts are not run. It returns the package's copyright file,
// read before the docs are dropped, for the SBOM's license field.
func addDeb(t *rootfs.Tree, pkg, debPath string) (copyright []byte, err error) {
	f, err := os.Open(debPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	err = deb.Walk(f, func(h *tar.Header, body io.Reader) error {
		p := "/" + strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if p == "/usr/share/doc/"+pkg+"/copyright" && h.Typeflag == tar.TypeReg {
			copyright, err = io.ReadAll(io.LimitReader(body, 1<<20))
			return err
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
				return fmt.Errorf("%s: %s: %w", pkg, p, err)
			}
			return t.AddFile(p, data, mode, pkg)
		}
		return nil
	})
	return copyright, err
}

func addDevShell(t *rootfs.Tree) error {
	if _, ok := t.Get("/usr/bin/busybox"); !ok {
		return fmt.Errorf("dev variant: /usr/bin/busybox missing (add busybox-static to packages.debian)")
	}
	for _, a := range devApplets {
		if _, ok := t.Get("/usr/bin/" + a); ok {
			continue
		}
		if err := t.AddSymlink("/usr/bin/"+a, "busybox", "busybox-static"); err != nil {
			return err
		}
	}
	return nil
}

func osRelease(variant, version, buildID string) []byte {
	return []byte(fmt.Sprintf(`NAME=Ballast
ID=ballast
PRETTY_NAME="Ballast %s (%s)"
VERSION_ID=%s
VARIANT_ID=%s
BUILD_ID=%s
HOME_URL="https://github.com/ballast-os/ballast"
`, version, variant, version, variant, buildID))
}

func imageJSON(info ImageInfo) ([]byte, error) {
	b, err := json.MarshalIndent(info, "", "  ")
	return append(b, '\n'), err
}
