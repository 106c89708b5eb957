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
	"github.com/ballast-os/ballast/packages/debian"
)

// loadVariant reads the variant, the lock, the version and the build's epoch.
func (b *builder) loadVariant(context.Context) error {
	var err error
	if b.v, err = variant.Load(filepath.Join(b.Repo, "variants", b.Variant+".toml")); err != nil {
		return err
	}
	if b.lock, err = debian.LoadLock(filepath.Join(b.Repo, "packages", "debian.lock")); err != nil {
		return err
	}
	ver, err := os.ReadFile(filepath.Join(b.Repo, "VERSION"))
	if err != nil {
		return err
	}
	b.version = strings.TrimSpace(string(ver))
	if b.version == "" {
		return fmt.Errorf("%s is empty", filepath.Join(b.Repo, "VERSION"))
	}
	if b.epoch, err = sourceDateEpoch(b.Repo); err != nil {
		return err
	}
	b.fetch = &debian.Fetcher{Mirror: b.Mirror, Sources: b.lock.Sources, CacheDir: b.CacheDir}
	if b.Progress != nil {
		b.fetch.Progress = b.Progress.Bytes
	}
	return nil
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
