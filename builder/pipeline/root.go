package pipeline

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"

	"github.com/ballast-os/ballast/apiserver/datastore"
	"github.com/ballast-os/ballast/builder/debinstall"
	"github.com/ballast-os/ballast/builder/devpki"
	"github.com/ballast-os/ballast/builder/rootfs"
	"github.com/ballast-os/ballast/builder/sbom"
	"github.com/ballast-os/ballast/builder/sepolicy"
	"github.com/ballast-os/ballast/contract"
)

// Applets linked to busybox in dev images: enough to look around and to test.
var devApplets = []string{"sh", "ash", "ls", "cat", "echo", "ps", "mount", "umount", "dmesg", "df", "free", "ip",
	"grep", "sed", "awk", "vi", "less", "head", "tail", "find", "stat", "uname", "hostname", "sleep", "poweroff",
	"reboot", "halt", "mkdir", "rm", "cp", "mv", "ln", "touch", "wc", "sort", "id", "env", "top", "wget", "sync"}

// buildRoot stages the root tree and writes it as a labelled EROFS image.
func (b *builder) buildRoot(ctx context.Context) error {
	b.step("root: SELinux policy (secilc)")
	pol, err := sepolicy.Compile(ctx, sepolicy.Options{Dir: filepath.Join(b.Repo, "selinux", "policy"), Dev: b.v.Dev,
		Programs: b.builtPrograms(), Work: b.work})
	if err != nil {
		return fmt.Errorf("variant %s: %w", b.v.Path, err)
	}
	b.step("root: stage tree")
	t, err := baseTree()
	if err != nil {
		return err
	}
	for _, p := range b.builtPrograms() {
		if p.Initramfs {
			continue
		}
		if err := t.AddHostFile(p.Path, b.bins[p.Name], 0o755, "ballast"); err != nil {
			return err
		}
	}
	if err := b.installPackages(t); err != nil {
		return err
	}
	for _, c := range b.comps {
		for _, bin := range installed(c.Binaries, b.v.Dev) {
			if err := t.AddHostFile(bin.InstallPath, bin.HostPath, 0o755, c.Component.Name+" "+c.Component.Version); err != nil {
				return err
			}
		}
	}
	if err := b.addPauseImage(ctx, t); err != nil {
		return err
	}
	if b.v.Dev {
		if err := addDevShell(t); err != nil {
			return fmt.Errorf("%s: %w", b.v.Path, err)
		}
		defaults, err := devpki.RemoteAPIDefaults(b.pkiDir, contract.DevAPIListen)
		if err != nil {
			return err
		}
		// Holds the server key: readable by root only.
		if err := t.AddFile(contract.DefaultsPath, defaults, 0o600, "ballast"); err != nil {
			return err
		}
		if err := devpki.CopyClient(b.pkiDir, filepath.Join(b.Out, "pki")); err != nil {
			return err
		}
	} else if err := t.CheckNoInterpreters(); err != nil {
		return fmt.Errorf("variant %s (production): %w", b.v.Path, err)
	}
	for _, p := range b.v.ProgramList() {
		if p.Main == "" {
			if _, ok := t.Get(p.Path); !ok {
				return fmt.Errorf("variant %s: program %s: %s is not in the root (package %q, component %q)", b.v.Path, p.Name, p.Path, p.Package, p.Component)
			}
		}
	}
	set, err := b.kernel.ModuleSet("kernel.modules", slices.Concat(b.v.Kernel.Modules, b.v.Kernel.OptionalModules), b.v.Kernel.HardwareModules)
	if err != nil {
		return fmt.Errorf("%s: %w", b.v.Path, err)
	}
	dest := path.Join(contract.ModulesDir, b.kernel.Version)
	for _, m := range set.Modules {
		if err := t.AddHostFile(path.Join(dest, m.Path), filepath.Join(b.kernel.ModDir, filepath.FromSlash(m.Path)), 0o644, "kernel"); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"modules.dep", set.Dep}, {"modules.alias", set.Alias}, {contract.ModulesOnDemand, set.OnDemand}, {"modules.softdep", set.Softdep}} {
		if err := t.AddFile(path.Join(dest, f.name), f.data, 0o644, "kernel"); err != nil {
			return err
		}
	}
	// What the system init bind-mounts over the files of blocked modules.
	if err := t.AddFile(contract.EmptyFile, nil, 0o444, "ballast"); err != nil {
		return err
	}
	if err := addFactoryEtc(t, b.v.Dev); err != nil {
		return err
	}
	for dst, src := range map[string]string{contract.SELinuxPolicy: pol.Policy, contract.SELinuxFileContexts: pol.FileContexts} {
		if err := t.AddHostFile(dst, src, 0o644, "ballast"); err != nil {
			return err
		}
	}
	if err := t.AddFile(contract.OSReleasePath, b.osReleaseFields().Format(), 0o644, "ballast"); err != nil {
		return err
	}
	if root := b.v.Updates.RootJSON; len(root) > 0 {
		if err := t.AddFile(contract.TUFRootPath, root, 0o644, "ballast"); err != nil {
			return fmt.Errorf("%s: updates.root: %w", b.v.Path, err)
		}
	}
	lp := b.v.LocalPolicy()
	info, err := contract.Image{Variant: b.v.Name, Version: b.version, Dev: b.v.Dev,
		Services: b.v.Services(), Modules: b.v.Kernel.Modules, Kernel: b.kernel.Version,
		Arch: string(b.arch), DatastoreFormat: datastore.FormatVersion, Updates: b.v.UpdatePolicy(),
		Signed: b.v.KeysPath() != "", Local: &contract.LocalPolicyJSON{Encryption: lp.Encryption, WithoutTPM: lp.WithoutTPM},
		UserDataSources: b.v.UserData.Sources}.Marshal()
	if err != nil {
		return err
	}
	if err := t.AddFile(contract.ImageInfoPath, info, 0o644, "ballast"); err != nil {
		return err
	}
	stage := filepath.Join(b.work, "rootfs")
	if err := t.Write(stage); err != nil {
		return err
	}
	if b.rootContent, err = contentSize(stage); err != nil {
		return err
	}
	contexts := pol.FileContexts
	b.step("root: mkfs.erofs (%d entries)", len(t.Paths()))
	b.rootImg = filepath.Join(b.work, "root.erofs")
	return rootfs.MkfsErofs(stage, b.rootImg, rootfs.ErofsOptions{
		FileContexts: contexts,
		UUID:         contract.DerivedUUID("erofs-uuid", b.v.Name+"\x00"+b.version).String(),
		Epoch:        b.epoch,
		Compression:  "lz4hc",
	})
}

// installPackages puts the root's Debian packages into the tree and does their maintainer
// scripts' work, recording each package's licence for the SBOM.
func (b *builder) installPackages(t *rootfs.Tree) error {
	got := map[string]debinstall.Installed{}
	for _, p := range b.rootPkgs {
		in, err := debinstall.Install(t, p.Name, b.debs[p.Name])
		if err != nil {
			return err
		}
		got[p.Name] = in
	}
	for _, p := range b.rootPkgs {
		c := got[p.Name].Copyright
		// A package whose doc directory links to another package's has its copyright there.
		if link := got[p.Name].DocLink; c == nil && link != "" {
			c = got[link].Copyright
		}
		b.licenses[p.Name] = sbom.DebianLicense(c)
	}
	return debinstall.MaintainerWork(t)
}

func (b *builder) osReleaseFields() contract.OSRelease {
	id := contract.DerivedUUID("build-id", b.v.Name+"\x00"+b.version)
	return contract.OSRelease{Version: b.version, Variant: b.v.Name, BuildID: fmt.Sprintf("%x", id[:6])}
}

func baseTree() (*rootfs.Tree, error) {
	t := rootfs.New()
	for _, l := range [][2]string{{"/bin", "usr/bin"}, {"/sbin", "usr/sbin"}, {"/lib", "usr/lib"}, {"/lib64", "usr/lib64"}} {
		if err := t.AddSymlink(l[0], l[1], "ballast"); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"/usr/bin", "/usr/sbin", "/usr/lib64", path.Dir(contract.ImageInfoPath), contract.FactoryEtc,
		"/etc", contract.LocalDir, "/run", "/proc", "/sys", "/dev", contract.VarDir, "/root"} {
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
		if err := t.AddFile(contract.FactoryEtc+"/"+name, []byte(body), 0o644, "ballast"); err != nil {
			return err
		}
	}
	return t.AddSymlink(contract.FactoryEtc+"/os-release", "../usr/lib/os-release", "ballast")
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

// contentSize is the bytes of the regular files under dir: what the root holds before EROFS
// compresses it.
func contentSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		fi, err := e.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	return n, err
}
