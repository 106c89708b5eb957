package k8scluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ballast-os/ballast/packages/gocomponents"
	"github.com/ballast-os/ballast/tests/testutil"
)

// PinnedBinaries returns the control plane built from the pins in packages/go-components.toml
// (components "kubernetes" and "etcd"), from the cache the image builder shares: only the first
// call on a machine compiles them (about ten minutes on 2 cores). A build failure fails the test:
// the pins are part of the repository, so there is nothing to skip for.
func PinnedBinaries(t testing.TB) Binaries {
	t.Helper()
	start := time.Now()
	b, err := BuildPinned(t.Context(), testutil.RepoRoot(t), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Logf("k8scluster: control-plane binaries built in %s (cached from now on)", d.Round(time.Second))
	}
	return b
}

// BuildPinned is PinnedBinaries without a test: for a build started before the tests run.
func BuildPinned(ctx context.Context, repo string, logf func(string, ...any)) (Binaries, error) {
	get := func(component string, names ...string) ([]string, error) {
		bins, err := gocomponents.BuildBinaries(ctx, repo, component, gocomponents.Options{Log: logf})
		if err != nil {
			return nil, fmt.Errorf("k8scluster: build %s from packages/go-components.toml: %w", component, err)
		}
		var paths []string
		for _, n := range names {
			p, ok := bins[n]
			if !ok {
				return nil, fmt.Errorf("k8scluster: component %s has no binary %s (%v)", component, n, bins)
			}
			paths = append(paths, p)
		}
		return paths, nil
	}
	k, err := get("kubernetes", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
	if err != nil {
		return Binaries{}, err
	}
	e, err := get("etcd", "etcd")
	if err != nil {
		return Binaries{}, err
	}
	return Binaries{Etcd: e[0], APIServer: k[0], ControllerManager: k[1], Scheduler: k[2]}, nil
}

// String lists the paths, for logs.
func (b Binaries) String() string {
	return fmt.Sprintf("etcd=%s kube-apiserver=%s kube-controller-manager=%s kube-scheduler=%s",
		b.Etcd, b.APIServer, b.ControllerManager, b.Scheduler)
}
