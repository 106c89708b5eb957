package gocomponents

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/ballast-os/ballast/packages/debian"
)

// BuildBinaries builds (or takes from the cache) the binaries of the pinned component of that
// name in repoRoot's packages/go-components.toml, for tests that run them on this machine (a
// Kubernetes control plane, runsc): name → host path in the cache, which callers must not
// modify. Test-only binaries are included when o.GOARCH is this machine's, the only one they are
// built for. o.CacheDir defaults to the image builder's
// (debian.CacheDir(), ~/.cache/ballast), so tests and image builds share one cache and compile
// a component once; o.GOARCH defaults to this machine's.
func BuildBinaries(ctx context.Context, repoRoot, component string, o Options) (map[string]string, error) {
	pins, err := Load(filepath.Join(repoRoot, "packages", "go-components.toml"))
	if err != nil {
		return nil, err
	}
	c, err := pins.Find(component)
	if err != nil {
		return nil, err
	}
	if o.CacheDir == "" {
		o.CacheDir = debian.CacheDir()
	}
	if o.GOARCH == "" {
		o.GOARCH = runtime.GOARCH
	}
	if c.TestOnly && o.GOARCH != runtime.GOARCH {
		return nil, fmt.Errorf("gocomponents: %s is test-only: built for this machine (%s) only, not %s", c.Name, runtime.GOARCH, o.GOARCH)
	}
	// As an image build for o.GOARCH has it, so the two share a cache entry.
	b, err := Build(ctx, c.ForArch(o.GOARCH), o)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, bin := range b.Binaries {
		out[bin.Name] = bin.HostPath
	}
	return out, nil
}
