package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/ballast-os/ballast/builder/debinstall"
	"github.com/ballast-os/ballast/builder/variant"
	"github.com/ballast-os/ballast/packages/debian"
)

// Lock refreshes packages/debian.lock from the signed archive index for every variant in variants/:
// each variant's kernel package, the UKI stub and its Debian packages with their dependencies.
func Lock(ctx context.Context, repo string, log func(string, ...any)) error {
	files, err := filepath.Glob(filepath.Join(repo, "variants", "*.toml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("lock: no variants in %s/variants", repo)
	}
	wanted := []string{stubPackage}
	for _, f := range files {
		v, err := variant.Load(f)
		if err != nil {
			return err
		}
		wanted = append(wanted, v.Kernel.Package)
		wanted = append(wanted, v.Packages.Debian...)
	}
	slices.Sort(wanted)
	wanted = slices.Compact(wanted)
	return debian.LockCommand(ctx, filepath.Join(repo, "packages", "debian.lock"), wanted, debinstall.Excluded, log)
}
