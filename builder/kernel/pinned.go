package kernel

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/ballast-os/ballast/builder/variant"
	"github.com/ballast-os/ballast/packages/debian"
)

// Pinned returns the kernel that variants/<variantName>.toml pins for its first architecture, fetched through the verified
// download cache (cacheDir, "" for debian.CacheDir()) from $BALLAST_DEBIAN_MIRROR or Debian's
// mirror, unpacked once and opened. Tests that boot the real kernel use it, so they boot exactly
// what images carry.
func Pinned(ctx context.Context, repo, variantName, cacheDir string) (*Tree, error) {
	v, err := variant.Load(filepath.Join(repo, "variants", variantName+".toml"))
	if err != nil {
		return nil, err
	}
	arch := v.ArchList()[0]
	if v, err = v.ForArch(arch); err != nil {
		return nil, err
	}
	dir, err := debian.UnpackPinned(ctx, filepath.Join(repo, "packages", "debian.lock"), v.Kernel.Package, arch, cacheDir)
	if err != nil {
		return nil, fmt.Errorf("variant %s: kernel: %w", v.Path, err)
	}
	return Open(dir)
}
