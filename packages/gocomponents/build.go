package gocomponents

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Options says where and for what a component is built.
type Options struct {
	// CacheDir holds the private Go caches (CacheDir/go) and the finished binaries
	// (CacheDir/gocomponents/<key>), e.g. ~/.cache/ballast. Required.
	CacheDir string
	// GOARCH of the image; "" means amd64. A cgo component for another architecture than the
	// host's is built with Debian's cross compiler (gcc-aarch64-linux-gnu for arm64 on x86-64) and
	// the target's static libraries from Debian's multiarch (libseccomp-dev:arm64).
	GOARCH string
	// GoBuildCache is the GOCACHE of the compiles; "" means CacheDir/go/build. Go's build cache is
	// content-addressed, so sharing the developer's is safe and saves compiling the standard
	// library again; it is not part of the cache key.
	GoBuildCache string
	// ModCache is the GOMODCACHE, where verified module downloads go; "" means CacheDir/go/mod.
	// Downloads are checked against the pinned h1: sums, so a cache of them can be shared by
	// builds that otherwise start empty.
	ModCache string
	// Log, when set, is told about cache hits and builds.
	Log func(format string, args ...any)
}

// Built is a component whose binaries are ready in the cache.
type Built struct {
	Component Component
	Key       string // cache key: hex sha256 of the build inputs
	Cached    bool   // true when the binaries came from the cache without a build
	Binaries  []Binary
}

// Binary is one built program.
type Binary struct {
	Name        string
	HostPath    string // in the cache; callers copy it, never modify it in place
	InstallPath string // in the image
	DevOnly     bool   // installed in dev variants only
	TestOnly    bool   // for tests only: never installed; InstallPath is empty
	Size        int64
	SHA256      string
}

// BuildAll builds (or finds in the cache) every pinned component, in pin-file order.
func (p *Pins) BuildAll(ctx context.Context, o Options) ([]Built, error) {
	var out []Built
	for _, c := range p.Components {
		b, err := Build(ctx, c, o)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Build returns the binaries of c, from the cache when an entry for exactly these inputs exists,
// otherwise by fetching, verifying and compiling the pinned module. Errors name the component and
// its version.
func Build(ctx context.Context, c Component, o Options) (Built, error) {
	b, err := build(ctx, c, o)
	if err != nil {
		return Built{}, fmt.Errorf("gocomponents: %s %s: %w", c.Name, c.Version, err)
	}
	return b, nil
}

func build(ctx context.Context, c Component, o Options) (Built, error) {
	if err := c.validate(); err != nil {
		return Built{}, err
	}
	if c.Wrapper != "" && !c.wrapper.loaded() {
		return Built{}, fmt.Errorf("wrapper %s was not read: get the component from Load", c.Wrapper)
	}
	if o.CacheDir == "" {
		return Built{}, errors.New("no cache directory given")
	}
	goarch := o.GOARCH
	if goarch == "" {
		goarch = "amd64"
	}
	triplet, err := crossTriplet(goarch, runtime.GOARCH)
	if err != nil {
		return Built{}, err
	}
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dirs := newCacheDirs(o.CacheDir)
	if o.GoBuildCache != "" {
		dirs.goCache = o.GoBuildCache
	}
	if o.ModCache != "" {
		dirs.modCache = o.ModCache
	}
	for _, d := range []string{dirs.root, dirs.outputs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return Built{}, err
		}
	}

	g, err := probeGo(ctx, dirs.root)
	if err != nil {
		return Built{}, err
	}
	tc := toolchain{GoVersion: g.Version}
	if c.CGO {
		ct, err := probeC(ctx, dirs.root, triplet, c.PkgConfig)
		if err != nil {
			return Built{}, err
		}
		ct.GoVersion = g.Version
		tc = ct
	}
	key := cacheKey(c, goarch, tc)
	final := filepath.Join(dirs.outputs, key)

	m, hit, err := lookup(final, c)
	if hit {
		logf("gocomponents: %s %s: cached (%s)", c.Name, c.Version, key[:12])
		return result(c, key, final, m, true), nil
	}
	if err != nil {
		logf("gocomponents: %s %s: cache entry %s unusable (%v), rebuilding", c.Name, c.Version, key[:12], err)
	}
	// Whatever is there without being a valid entry (damaged, or left by hand) would block the
	// rename that publishes the new one.
	if err := os.RemoveAll(final); err != nil {
		return Built{}, err
	}

	start := time.Now()
	logf("gocomponents: %s %s: fetching %s", c.Name, c.Version, c.Module)
	mod, err := download(ctx, c, dirs, g)
	if err != nil {
		return Built{}, err
	}
	tmp, err := os.MkdirTemp(dirs.outputs, ".tmp-"+key[:12]+"-")
	if err != nil {
		return Built{}, err
	}
	defer os.RemoveAll(tmp) // a no-op once the entry has been renamed into place
	srcDir := mod.Dir
	if c.Wrapper != "" {
		// The wrapper is the main module; it is built from the bytes the key hashed, outside
		// the entry so that only binaries are published.
		if srcDir, err = os.MkdirTemp(dirs.root, ".wrapper-"+key[:12]+"-"); err != nil {
			return Built{}, err
		}
		defer os.RemoveAll(srcDir)
		if err := c.wrapper.write(srcDir); err != nil {
			return Built{}, fmt.Errorf("wrapper %s: %w", c.Wrapper, err)
		}
	}
	m = manifest{Component: c.Name, Module: c.Module, Version: c.Version, Key: key, Binaries: map[string]fileSum{}}
	for _, s := range plan(c, goarch, tc.Target) {
		logf("gocomponents: %s %s: building %s", c.Name, c.Version, s.Binary)
		sum, err := compile(ctx, s, goarch, srcDir, filepath.Join(tmp, s.Binary), dirs, g)
		if err != nil {
			return Built{}, err
		}
		m.Binaries[s.Binary] = sum
	}
	if err := store(tmp, final, m); err != nil {
		return Built{}, fmt.Errorf("cache %s: %w", final, err)
	}
	logf("gocomponents: %s %s: built in %s (%s)", c.Name, c.Version, time.Since(start).Round(time.Second), key[:12])
	return result(c, key, final, m, false), nil
}

// compile runs one step in the module's directory (or the wrapper's). Building in place is safe
// although the directory belongs to the module cache: -mod=readonly never writes to it, and
// -trimpath keeps its host path out of the binary.
func compile(ctx context.Context, s step, goarch, srcDir, out string, dirs cacheDirs, g goInfo) (fileSum, error) {
	args := append([]string{s.Args[0], "-o", out}, s.Args[1:]...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = srcDir
	cmd.Env = goEnv(dirs, g, s.Env)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		return fileSum{}, fmt.Errorf("%s: %s: %w\n%s", s.Binary, s, err, tail(log.String(), 40))
	}
	if err := checkStatic(out, goarch); err != nil {
		return fileSum{}, err
	}
	return sumFile(out)
}

func result(c Component, key, dir string, m manifest, cached bool) Built {
	b := Built{Component: c, Key: key, Cached: cached}
	for _, spec := range c.Binaries {
		s := m.Binaries[spec.Name]
		b.Binaries = append(b.Binaries, Binary{
			Name:        spec.Name,
			HostPath:    filepath.Join(dir, spec.Name),
			InstallPath: spec.Install,
			DevOnly:     spec.DevOnly,
			TestOnly:    c.TestOnly || spec.TestOnly,
			Size:        s.Size,
			SHA256:      s.SHA256,
		})
	}
	return b
}

// tail keeps the last n lines of a build log: the error is at the end, and containerd's full log
// would bury it.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
