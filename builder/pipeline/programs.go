package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// goPrograms maps Ballast's programs to their main packages.
var goPrograms = map[string]string{
	"initramfs-init": "./init/initramfs/cmd/initramfs-init",
	"system-init":    "./init/system/cmd/system-init",
	"apiserver":      "./apiserver/cmd/apiserver",
	"apiclient":      "./apiserver/cmd/apiclient",
	"netconf":        "./init/system/cmd/netconf",
}

// buildPrograms compiles the named programs into dir as static, reproducible linux/amd64 binaries.
// One go build call lets the toolchain build them in parallel and reuse its cache.
func buildPrograms(ctx context.Context, repo, dir string, names []string, version string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w -buildid= -X main.version=" + version, "-o", dir + "/"}
	for _, n := range names {
		pkg, ok := goPrograms[n]
		if !ok {
			return fmt.Errorf("programs: unknown program %q", n)
		}
		args = append(args, pkg)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-mod=readonly")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("programs: go build: %w\n%s", err, out.String())
	}
	// go build names each binary after its package directory.
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, filepath.Base(goPrograms[n]))); err != nil {
			return fmt.Errorf("programs: %s not built: %w", n, err)
		}
	}
	return nil
}
