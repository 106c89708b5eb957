package kernel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ballast-os/ballast/builder/variant"
	"github.com/ballast-os/ballast/packages/deb"
	"github.com/ballast-os/ballast/packages/debian"
)

// Pinned returns the kernel that variants/<variantName>.toml pins, fetched through the verified
// download cache (cacheDir, "" for debian.CacheDir()) from $BALLAST_DEBIAN_MIRROR or Debian's
// mirror, unpacked once and opened. Tests that boot the real kernel use it, so they boot exactly
// what images carry.
func Pinned(ctx context.Context, repo, variantName, cacheDir string) (*Tree, error) {
	if cacheDir == "" {
		cacheDir = debian.CacheDir()
	}
	v, err := variant.Load(filepath.Join(repo, "variants", variantName+".toml"))
	if err != nil {
		return nil, err
	}
	lock, err := debian.LoadLock(filepath.Join(repo, "packages", "debian.lock"))
	if err != nil {
		return nil, err
	}
	p, err := lock.Find(v.Kernel.Package)
	if err != nil {
		return nil, fmt.Errorf("variant %s: kernel.package: %w", v.Path, err)
	}
	f := &debian.Fetcher{Mirror: os.Getenv("BALLAST_DEBIAN_MIRROR"), Sources: lock.Sources, CacheDir: cacheDir}
	debPath, err := f.Path(ctx, p)
	if err != nil {
		return nil, err
	}
	dir, err := deb.UnpackCached(cacheDir, debPath, p.SHA256)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", p.Name, err)
	}
	return Open(dir)
}
