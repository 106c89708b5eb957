package pipeline

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ballast-os/ballast/builder/variant"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/packages/debian"
)

// loadVariant reads the variant, the lock, the version and the build's epoch, and makes the
// output directory.
func (b *builder) loadVariant(context.Context) error {
	var err error
	switch {
	case b.VariantFile != "":
		if b.v, err = variant.LoadFile(b.VariantFile); err != nil {
			return err
		}
		if b.Variant != "" && b.Variant != b.v.Name {
			return fmt.Errorf("variant %q and variant file %s (name %q) disagree", b.Variant, b.VariantFile, b.v.Name)
		}
	case b.Variant != "":
		if b.v, err = variant.Load(filepath.Join(b.Repo, "variants", b.Variant+".toml")); err != nil {
			return err
		}
	default:
		return fmt.Errorf("no variant: name one of variants/ or give a variant file")
	}
	b.arch = b.Arch
	if b.arch == "" {
		b.arch = b.v.ArchList()[0]
	}
	if b.v, err = b.v.ForArch(b.arch); err != nil {
		return err
	}
	if b.lock, err = debian.LoadLock(filepath.Join(b.Repo, "packages", "debian.lock")); err != nil {
		return err
	}
	if b.version, err = b.readVersion(); err != nil {
		return err
	}
	if b.epoch, err = sourceDateEpoch(b.Repo); err != nil {
		return err
	}
	if b.Out == "" {
		b.Out = filepath.Join(b.Repo, "build", OutName(b.v.Name, b.arch))
		if b.Version != "" {
			b.Out += "-" + b.version
		}
	}
	b.work = filepath.Join(b.Out, "work")
	if err := os.MkdirAll(b.work, 0o755); err != nil {
		return err
	}
	b.fetch = &debian.Fetcher{Mirror: b.Mirror, Sources: b.lock.Sources, CacheDir: b.CacheDir}
	if b.Progress != nil {
		b.fetch.Progress = b.Progress.Bytes
	}
	return nil
}

// OutName is the build directory's name under build/ of a variant built for an architecture:
// the variant's name for amd64, which every image had before there were others, and
// <name>-<arch> for the rest.
func OutName(variant string, arch contract.Arch) string {
	if arch.Or() == contract.AMD64 {
		return variant
	}
	return variant + "-" + string(arch)
}

// sourceDateEpoch is SOURCE_DATE_EPOCH, else the last commit's time, else 0 for a tree without
// history (an exported tarball).
func sourceDateEpoch(repo string) (int64, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", s)
		}
		return n, nil
	}
	out, err := exec.Command("git", "-C", repo, "log", "-1", "--format=%ct").Output()
	if err != nil {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("git log: commit time %q: %w", out, err)
	}
	return n, nil
}

// readVersion is Options.Version, else the repository's VERSION file; it names entries, payloads
// and repository paths, so it must be one contract.ValidateVersion accepts.
func (b *builder) readVersion() (string, error) {
	if b.Version != "" {
		if err := contract.ValidateVersion(b.Version); err != nil {
			return "", fmt.Errorf("--version: %w", err)
		}
		return b.Version, nil
	}
	path := filepath.Join(b.Repo, "VERSION")
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(raw))
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	if err := contract.ValidateVersion(v); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
