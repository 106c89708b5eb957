package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/ballast-os/ballast/builder/debinstall"
	"github.com/ballast-os/ballast/builder/variant"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/packages/debian"
)

// Lock refreshes packages/debian.lock from the signed archive index for every variant in variants/:
// for each architecture, each variant's kernel package, the UKI stub and its Debian packages with
// their dependencies.
func Lock(ctx context.Context, repo string, log func(string, ...any)) error {
	files, err := filepath.Glob(filepath.Join(repo, "variants", "*.toml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("lock: no variants in %s/variants", repo)
	}
	var vs []*variant.Variant
	for _, f := range files {
		v, err := variant.Load(f)
		if err != nil {
			return err
		}
		vs = append(vs, v)
	}
	wanted, err := lockWanted(vs)
	if err != nil {
		return err
	}
	return debian.LockCommand(ctx, filepath.Join(repo, "packages", "debian.lock"), wanted, debinstall.Excluded, log)
}

// lockWanted is what the lock must pin for each architecture: every variant's kernel package and
// Debian packages for each architecture it builds for, and the UKI stub, sorted.
func lockWanted(vs []*variant.Variant) (map[contract.Arch][]string, error) {
	wanted := map[contract.Arch][]string{}
	for _, v := range vs {
		for _, arch := range v.ArchList() {
			r, err := v.ForArch(arch)
			if err != nil {
				return nil, err
			}
			wanted[arch] = append(wanted[arch], stubPackage, r.Kernel.Package)
			wanted[arch] = append(wanted[arch], r.Packages.Debian...)
		}
	}
	for a, w := range wanted {
		slices.Sort(w)
		wanted[a] = slices.Compact(w)
	}
	return wanted, nil
}
