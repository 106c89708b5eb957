package gocomponents

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ballast-os/ballast/packages/digest"
)

// toolchain is what the host contributes to a build's output besides the pinned source: it is
// part of the cache key, so upgrading Go, gcc, glibc or a static C library rebuilds.
type toolchain struct {
	GoVersion string // `go env GOVERSION` of the go command the build runs
	CC        string `json:",omitempty"` // first line of `gcc --version`; cgo only
	// Target is what a cross compiler says it builds for (`-dumpmachine`, "aarch64-linux-gnu");
	// empty for the host's own gcc, so native keys stay what they were before cross builds.
	Target string `json:",omitempty"`
	LibC   string `json:",omitempty"` // sha256 of the libc.a that static cgo binaries carry
	CLibs  []cLib `json:",omitempty"`
}

// cLib is one pkg-config library linked statically into a cgo component.
type cLib struct {
	Name     string
	Version  string
	Archives map[string]string // archive file name → sha256
}

// goInfo is what the go command on PATH says about itself. It is asked, not taken from
// runtime.Version, because the builder may have been compiled by another Go than the one that
// compiles the components.
type goInfo struct {
	Version string `json:"GOVERSION"`
	Proxy   string `json:"GOPROXY"`
	SumDB   string `json:"GOSUMDB"`
}

func probeGo(ctx context.Context, dir string) (goInfo, error) {
	var g goInfo
	out, err := run(ctx, dir, append(os.Environ(), "GOTOOLCHAIN=local", "GOWORK=off"), "go", "env", "-json", "GOVERSION", "GOPROXY", "GOSUMDB")
	if err != nil {
		return g, fmt.Errorf("go env: %w", err)
	}
	if err := json.Unmarshal([]byte(out), &g); err != nil || !strings.HasPrefix(g.Version, "go") {
		return g, fmt.Errorf("go env: unexpected output %q", out)
	}
	return g, nil
}

// probeC records the C side of a cgo component built with the toolchain of triplet (crossTriplet)
// and fails early, with the missing piece named, when it or the static libraries are not installed.
func probeC(ctx context.Context, dir, triplet string, libs []string) (toolchain, error) {
	var t toolchain
	cc := cCompilerFor(triplet)
	hint := "cgo needs a C compiler; scripts/host-deps.sh installs gcc"
	if triplet != "" {
		hint = "cgo for another architecture needs Debian's cross compiler; scripts/host-deps.sh installs gcc-" + triplet
	}
	out, err := run(ctx, dir, os.Environ(), cc, "--version")
	if err != nil {
		return t, fmt.Errorf("%s --version (%s): %w", cc, hint, err)
	}
	t.CC, _, _ = strings.Cut(out, "\n")
	if triplet != "" {
		// A compiler of that name building for anything else would link the wrong libc.
		m, err := run(ctx, dir, os.Environ(), cc, "-dumpmachine")
		if err != nil {
			return t, fmt.Errorf("%s -dumpmachine: %w", cc, err)
		}
		if t.Target = strings.TrimSpace(m); t.Target != triplet {
			return t, fmt.Errorf("%s -dumpmachine says %q, not %s", cc, t.Target, triplet)
		}
	}
	libc, err := run(ctx, dir, os.Environ(), cc, "-print-file-name=libc.a")
	if err != nil {
		return t, fmt.Errorf("%s -print-file-name=libc.a: %w", cc, err)
	}
	libcDev := "libc6-dev"
	if triplet != "" {
		libcDev = "libc6-dev for " + triplet + ", which gcc-" + triplet + " brings"
	}
	if t.LibC, err = digest.File(strings.TrimSpace(libc)); err != nil {
		return t, fmt.Errorf("static libc (%s): %w", libcDev, err)
	}
	for _, name := range libs {
		l, err := probeLib(ctx, dir, triplet, name)
		if err != nil {
			return t, err
		}
		t.CLibs = append(t.CLibs, l)
	}
	return t, nil
}

func probeLib(ctx context.Context, dir, triplet, name string) (cLib, error) {
	l := cLib{Name: name, Archives: map[string]string{}}
	hint := "scripts/host-deps.sh installs its -dev package and pkg-config"
	if triplet != "" {
		hint = "scripts/host-deps.sh installs its -dev package of the target architecture from Debian's multiarch (e.g. libseccomp-dev:arm64) and pkg-config"
	}
	env := append(os.Environ(), pkgConfigEnv(triplet)...)
	v, err := run(ctx, dir, env, "pkg-config", "--modversion", name)
	if err != nil {
		return l, fmt.Errorf("pkg-config %s (%s): %w", name, hint, err)
	}
	l.Version = strings.TrimSpace(v)
	libdir, err := run(ctx, dir, env, "pkg-config", "--variable=libdir", name)
	if err != nil {
		return l, fmt.Errorf("pkg-config --variable=libdir %s: %w", name, err)
	}
	flags, err := run(ctx, dir, env, "pkg-config", "--static", "--libs-only-l", name)
	if err != nil {
		return l, fmt.Errorf("pkg-config --static --libs-only-l %s: %w", name, err)
	}
	// Only archives in the library's own libdir are hashed: -lpthread and the like come from libc,
	// which is hashed on its own.
	for _, f := range strings.Fields(flags) {
		a := filepath.Join(strings.TrimSpace(libdir), "lib"+strings.TrimPrefix(f, "-l")+".a")
		if sum, err := digest.File(a); err == nil {
			l.Archives[filepath.Base(a)] = sum
		}
	}
	if len(l.Archives) == 0 {
		return l, fmt.Errorf("pkg-config %s %s: no static archive (lib*.a) in %s (%s)", name, l.Version, strings.TrimSpace(libdir), hint)
	}
	return l, nil
}

// run returns a command's stdout; on failure the error carries its stderr.
func run(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
