// Package programs compiles Ballast's own programs, the entries of contract.Programs that have a
// Go main package, into static, reproducible Linux binaries of one architecture.
package programs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ballast-os/ballast/contract"
)

// Build compiles progs into dir, each binary named after its program, and returns the host path
// of each by program name. One go build call lets the toolchain build them in parallel and reuse
// its cache. arch is the target architecture; version is stamped into main.version; tags are Go build tags (contract.TagInstaller).
func Build(ctx context.Context, repo, dir string, arch contract.Arch, progs []contract.Program, version string, tags ...string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("programs: %w", err)
	}
	out := map[string]string{}
	var mains []string
	for _, p := range progs {
		if p.Main == "" {
			return nil, fmt.Errorf("programs: %s comes from the Debian package %s, not from Go", p.Name, p.Package)
		}
		mains = append(mains, p.Main)
	}
	if len(mains) == 0 {
		return out, nil
	}
	// go build names each binary after its main package's directory; -o dir/ keeps that name, and
	// the table's names are then given by a rename, so two programs never race for a file.
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return nil, fmt.Errorf("programs: %w", err)
	}
	defer os.RemoveAll(tmp)
	args := []string{"build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w -buildid= -X main.version=" + version, "-o", tmp + "/"}
	if len(tags) > 0 {
		args = append(args, "-tags="+strings.Join(tags, ","))
	}
	cmd := exec.CommandContext(ctx, "go", append(args, mains...)...)
	cmd.Dir = repo
	// The micro-architecture levels are pinned to each architecture's baseline: a developer's
	// GOAMD64 must not change the image's bytes or the machines it runs on.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch.Info().GOARCH,
		"GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=-mod=readonly")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("programs: go build: %w\n%s", err, log.String())
	}
	for _, p := range progs {
		dst := filepath.Join(dir, p.Name)
		if err := os.Rename(filepath.Join(tmp, filepath.Base(p.Main)), dst); err != nil {
			return nil, fmt.Errorf("programs: %s not built: %w", p.Name, err)
		}
		out[p.Name] = dst
	}
	return out, nil
}
