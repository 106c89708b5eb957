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
	LibC      string `json:",omitempty"` // sha256 of the libc.a that static cgo binaries carry
	CLibs     []cLib `json:",omitempty"`
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

// probeC records the C side of a cgo component and fails early, with the missing piece named,
// when the static libraries are not installed.
func probeC(ctx context.Context, dir string, libs []string) (toolchain, error) {
	var t toolchain
	out, err := run(ctx, dir, os.Environ(), cCompiler, "--version")
	if err != nil {
		return t, fmt.Errorf("%s --version (cgo needs a C compiler; scripts/host-deps.sh installs gcc): %w", cCompiler, err)
	}
	t.CC, _, _ = strings.Cut(out, "\n")
	libc, err := run(ctx, dir, os.Environ(), cCompiler, "-print-file-name=libc.a")
	if err != nil {
		return t, fmt.Errorf("%s -print-file-name=libc.a: %w", cCompiler, err)
	}
	if t.LibC, err = digest.File(strings.TrimSpace(libc)); err != nil {
		return t, fmt.Errorf("static libc (libc6-dev): %w", err)
	}
	for _, name := range libs {
		l, err := probeLib(ctx, dir, name)
		if err != nil {
			return t, err
		}
		t.CLibs = append(t.CLibs, l)
	}
	return t, nil
}

func probeLib(ctx context.Context, dir, name string) (cLib, error) {
	l := cLib{Name: name, Archives: map[string]string{}}
	hint := "scripts/host-deps.sh installs its -dev package and pkg-config"
	v, err := run(ctx, dir, os.Environ(), "pkg-config", "--modversion", name)
	if err != nil {
		return l, fmt.Errorf("pkg-config %s (%s): %w", name, hint, err)
	}
	l.Version = strings.TrimSpace(v)
	libdir, err := run(ctx, dir, os.Environ(), "pkg-config", "--variable=libdir", name)
	if err != nil {
		return l, fmt.Errorf("pkg-config --variable=libdir %s: %w", name, err)
	}
	flags, err := run(ctx, dir, os.Environ(), "pkg-config", "--static", "--libs-only-l", name)
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
