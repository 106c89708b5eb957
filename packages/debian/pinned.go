package debian

import (
	"context"
	"fmt"
	"os"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/packages/deb"
)

// UnpackPinned returns the directory where the package that the lock file at lockPath pins for
// arch is unpacked, fetching it through the verified download cache (cacheDir, "" for CacheDir()) from
// $BALLAST_DEBIAN_MIRROR or Debian's mirror the first time. It gives tests the very files the
// builder puts into images: the kernel, the UKI stub.
func UnpackPinned(ctx context.Context, lockPath, name string, arch contract.Arch, cacheDir string) (string, error) {
	if cacheDir == "" {
		cacheDir = CacheDir()
	}
	lock, err := LoadLock(lockPath)
	if err != nil {
		return "", err
	}
	p, err := lock.Find(name, arch)
	if err != nil {
		return "", err
	}
	f := &Fetcher{Mirror: os.Getenv("BALLAST_DEBIAN_MIRROR"), Sources: lock.Sources, CacheDir: cacheDir}
	debPath, err := f.Path(ctx, p)
	if err != nil {
		return "", err
	}
	dir, err := deb.UnpackCached(cacheDir, debPath, p.SHA256)
	if err != nil {
		return "", fmt.Errorf("lock %s: package %s (%s): %w", lockPath, p.Name, p.Arch, err)
	}
	return dir, nil
}
