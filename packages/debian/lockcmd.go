package debian

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/ballast-os/ballast/contract"
)

// LockCommand is `ballast lock` / `make lock`: it resolves each architecture's wanted names (minus
// exclude) from the signed archive and rewrites lockPath, which then holds exactly the
// architectures of wanted. The trusted keys are the *.asc files in the keys folder beside the
// lock file (packages/keys for packages/debian.lock). The sources are the lock's own [[source]]
// tables when it has them, so a reviewed change of sources survives a refresh, else
// DefaultSources(). log gets one line per source and per changed package.
func LockCommand(ctx context.Context, lockPath string, wanted map[contract.Arch][]string, exclude []string, log func(string, ...any)) error {
	if log == nil {
		log = func(string, ...any) {}
	}
	keys, err := LoadKeyring(filepath.Join(filepath.Dir(lockPath), "keys"))
	if err != nil {
		return err
	}
	var old *Lock
	if Exists(lockPath) {
		if old, err = LoadLock(lockPath); err != nil {
			log("lock: ignoring the current lock file: %v", err)
			old = nil
		}
	}
	sources := DefaultSources()
	if old != nil && len(old.Sources) > 0 {
		sources = old.Sources
	}
	l, err := refresh(ctx, newArchive(keys), sources, wanted, exclude, log)
	if err != nil {
		return fmt.Errorf("lock %s: %w", lockPath, err)
	}
	var before []Package
	if old != nil {
		before = old.Packages
	}
	for _, line := range lockChanges(before, l.Packages) {
		log("lock: %s", line)
	}
	if err := WriteLock(lockPath, l); err != nil {
		return err
	}
	var size int64
	for _, p := range l.Packages {
		size += p.Size
	}
	log("lock: wrote %s: %d packages, %.1f MiB of .debs", lockPath, len(l.Packages), float64(size)/(1<<20))
	return nil
}

// lockChanges describes what a refresh changed, one line per package and architecture, spelled
// name:arch as dpkg does, in the order of after and then of before.
func lockChanges(before, after []Package) []string {
	id := func(p Package) string { return p.Name + ":" + p.Arch }
	old := map[string]Package{}
	for _, p := range before {
		old[id(p)] = p
	}
	var out []string
	for _, p := range after {
		o, ok := old[id(p)]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("+ %s %s", id(p), p.Version))
		case o.Version != p.Version:
			out = append(out, fmt.Sprintf("~ %s %s -> %s", id(p), o.Version, p.Version))
		case o.SHA256 != p.SHA256:
			out = append(out, fmt.Sprintf("! %s %s: same version, new sha256 %s (was %s)", id(p), p.Version, p.SHA256, o.SHA256))
		}
		delete(old, id(p))
	}
	for _, p := range before {
		if _, gone := old[id(p)]; gone {
			out = append(out, fmt.Sprintf("- %s %s", id(p), p.Version))
		}
	}
	return out
}
