package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

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
	return debian.LockCommand(ctx, filepath.Join(repo, "packages", "debian.lock"), lockWanted(vs), debinstall.Excluded, log)
}

// lockWanted is what the lock must pin for each architecture: every variant's kernel package and
// Debian packages, and the UKI stub, sorted.
func lockWanted(vs []*variant.Variant) map[contract.Arch][]string {
	wanted := map[contract.Arch][]string{}
	for _, v := range vs {
		for _, arch := range variantArchs(v) {
			wanted[arch] = append(wanted[arch], stubPackage, variantKernel(v, arch))
			wanted[arch] = append(wanted[arch], v.Packages.Debian...)
		}
	}
	for a, w := range wanted {
		slices.Sort(w)
		wanted[a] = slices.Compact(w)
	}
	return wanted
}

// variantArchs and variantKernel are a TEMPORARY BRIDGE until variants name their architectures
// (`arch = [...]`, and `{arch}` in kernel.package): every variant is taken to build for amd64 and
// arm64, with arm64's kernel package named like amd64's but ending in -arm64 instead of -amd64.
// Replace both with the variant's own arch list and kernel package per architecture.
func variantArchs(*variant.Variant) []contract.Arch {
	return []contract.Arch{contract.AMD64, contract.ARM64}
}

func variantKernel(v *variant.Variant, arch contract.Arch) string {
	amd64 := "-" + contract.AMD64.Info().Debian
	if arch == contract.AMD64 || !strings.HasSuffix(v.Kernel.Package, amd64) {
		return v.Kernel.Package
	}
	return strings.TrimSuffix(v.Kernel.Package, amd64) + "-" + arch.Info().Debian
}
