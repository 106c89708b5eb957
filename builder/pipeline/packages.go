package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ballast-os/ballast/builder/kernel"
	"github.com/ballast-os/ballast/builder/sbom"
	"github.com/ballast-os/ballast/packages/deb"
	"github.com/ballast-os/ballast/packages/debian"
)

// stubPackage provides the UKI stub, a build input like the kernel.
const stubPackage = "systemd-boot-efi"

// fetchPackages resolves the variant's packages against the lock and fetches every one, verified.
// The kernel and the UKI stub are build inputs: only their files are used, so their dependencies
// are not; the variant's packages go into the root with their whole closure.
func (b *builder) fetchPackages(ctx context.Context) error {
	arch := b.arch
	var err error
	if b.rootPkgs, err = b.lock.Closure(b.v.Packages.Debian, arch); err != nil {
		return fmt.Errorf("variant %s: %w (run `make lock`)", b.v.Path, err)
	}
	b.pinned = nil
	for _, n := range []string{b.v.Kernel.Package, stubPackage} {
		p, err := b.lock.Find(n, arch)
		if err != nil {
			return fmt.Errorf("variant %s: %w (run `make lock`)", b.v.Path, err)
		}
		b.pinned = append(b.pinned, p)
	}
	kernelPkg, stubPkg := b.pinned[0], b.pinned[1]
	b.pinned = append(b.pinned, b.rootPkgs...)
	b.step("packages: %d Debian packages (kernel %s, %s, %d for the root)", len(b.pinned), b.v.Kernel.Package, stubPackage, len(b.rootPkgs))
	b.debs = map[string]string{}
	for _, p := range b.pinned {
		path, err := b.fetch.Path(ctx, p)
		if err != nil {
			return err
		}
		b.debs[p.Name] = path
	}
	b.licenses = map[string]string{}
	kdir, err := b.unpackInput(kernelPkg)
	if err != nil {
		return err
	}
	if b.kernel, err = kernel.Open(kdir); err != nil {
		return err
	}
	b.stubDir, err = b.unpackInput(stubPkg)
	return err
}

// unpackInput unpacks a build input into the work cache and records its licence from its own
// copyright file, which every Debian package must carry.
func (b *builder) unpackInput(p debian.Package) (string, error) {
	dir, err := deb.UnpackCached(b.WorkCache, b.debs[p.Name], p.SHA256)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p.Name, err)
	}
	c, err := os.ReadFile(filepath.Join(dir, "usr/share/doc", p.Name, "copyright"))
	if err != nil {
		return "", fmt.Errorf("%s: copyright: %w", p.Name, err)
	}
	b.licenses[p.Name] = sbom.DebianLicense(c)
	return dir, nil
}
