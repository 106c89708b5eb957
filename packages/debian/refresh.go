package debian

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ballast-os/ballast/contract"
)

// Refresh fetches every source's InRelease, verifies it with keys, fetches and checks the Packages
// index it lists for each architecture in wanted, and resolves each architecture's wanted names
// over all sources (the highest version of each name wins, ties going to the earlier source). The
// result is ready for WriteLock.
func Refresh(ctx context.Context, sources []Source, keys *Keyring, wanted map[contract.Arch][]string, exclude []string) (*Lock, error) {
	return refresh(ctx, newArchive(keys), sources, wanted, exclude, func(string, ...any) {})
}

func refresh(ctx context.Context, a *archive, sources []Source, wanted map[contract.Arch][]string, exclude []string, log func(string, ...any)) (*Lock, error) {
	archs, err := wantedArchs(wanted)
	if err != nil {
		return nil, fmt.Errorf("lock refresh: %w", err)
	}
	// An empty result would silently replace a good lock with one that pins nothing.
	if len(sources) == 0 {
		return nil, fmt.Errorf("lock refresh: need at least one source")
	}
	if err := (&Lock{Architectures: archs, Sources: sources}).check(); err != nil {
		return nil, fmt.Errorf("lock refresh: %w", err)
	}
	type result struct {
		rel     *Release
		entries map[contract.Arch][]Entry
		err     error
	}
	// Sources download in parallel; each goroutine writes only its own slot. One InRelease per
	// source lists (and its signature covers) the Packages files of all architectures.
	results := make([]result, len(sources))
	var wg sync.WaitGroup
	for i, src := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			if r.rel, r.err = a.release(ctx, src); r.err != nil {
				return
			}
			r.entries = map[contract.Arch][]Entry{}
			for _, arch := range archs {
				if r.entries[arch], r.err = a.packages(ctx, src, r.rel, arch.Info().Debian); r.err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	idx := map[contract.Arch]*Index{}
	for _, arch := range archs {
		idx[arch] = NewIndex(arch.Info().Debian)
	}
	for i, r := range results {
		if r.err != nil {
			return nil, fmt.Errorf("lock refresh: %w", r.err)
		}
		var counts []string
		for _, arch := range archs {
			counts = append(counts, fmt.Sprintf("%s %d", arch, len(r.entries[arch])))
			idx[arch].Add(r.entries[arch]...)
		}
		log("source %s: %s %s of %s, signed by %s, packages: %s", sources[i].Name, r.rel.Codename,
			sources[i].Component, r.rel.Date.UTC().Format(time.DateTime), r.rel.SignedBy, strings.Join(counts, ", "))
	}
	l := &Lock{
		Architectures: archs,
		Wanted:        map[contract.Arch][]string{},
		Exclude:       sortedUnique(exclude),
		Sources:       slices.Clone(sources),
	}
	perArch := map[contract.Arch][]Package{}
	for _, arch := range archs {
		l.Wanted[arch] = sortedUnique(wanted[arch])
		if perArch[arch], err = Resolve(idx[arch], l.Wanted[arch], ResolveOptions{Exclude: exclude}); err != nil {
			return nil, fmt.Errorf("lock refresh: %s: %w", arch, err)
		}
	}
	if l.Packages, err = mergeArchs(archs, perArch); err != nil {
		return nil, fmt.Errorf("lock refresh: %w", err)
	}
	return l, nil
}

// wantedArchs checks wanted's architectures and returns them in contract.Archs order.
func wantedArchs(wanted map[contract.Arch][]string) ([]contract.Arch, error) {
	for _, a := range slices.Sorted(maps.Keys(wanted)) {
		if p, err := contract.ParseArch(string(a)); err != nil || p != a {
			return nil, fmt.Errorf("wanted packages for %q: not one of %v", a, contract.Archs())
		}
		if len(wanted[a]) == 0 {
			return nil, fmt.Errorf("no wanted packages for %s", a)
		}
	}
	var archs []contract.Arch
	for _, a := range contract.Archs() {
		if _, ok := wanted[a]; ok {
			archs = append(archs, a)
		}
	}
	if len(archs) == 0 {
		return nil, fmt.Errorf("no wanted packages for any architecture")
	}
	return archs, nil
}

// mergeArchs joins the closures resolved for each architecture into the lock's packages. An
// architecture's own packages are kept as they are. An Architecture: all package is pinned once,
// and must be the same file on every architecture; its required_by is the union, with a dependent
// qualified by architecture (name:arch) where it is pinned for an architecture on which it does
// not need the package, so that Closure stays exact on each.
func mergeArchs(archs []contract.Arch, perArch map[contract.Arch][]Package) ([]Package, error) {
	pinned := map[contract.Arch]map[string]bool{}
	for _, a := range archs {
		pinned[a] = map[string]bool{}
		for _, p := range perArch[a] {
			pinned[a][p.Name] = true
		}
	}
	var out []Package
	shared := map[string]Package{}
	sharedBy := map[string]map[contract.Arch][]string{} // all-package → architecture → its dependents there
	firstArch := map[string]contract.Arch{}
	for _, a := range archs {
		for _, p := range perArch[a] {
			if p.Arch != ArchAll {
				out = append(out, p)
				continue
			}
			if s, ok := shared[p.Name]; !ok {
				shared[p.Name], firstArch[p.Name] = p, a
				sharedBy[p.Name] = map[contract.Arch][]string{}
			} else if s.Version != p.Version || s.Filename != p.Filename || s.SHA256 != p.SHA256 || s.Source != p.Source {
				return nil, fmt.Errorf("package %s (%s): %s resolves to %s %s from %s, %s to %s %s from %s", p.Name, ArchAll,
					firstArch[p.Name], s.Version, s.Filename, s.Source, a, p.Version, p.Filename, p.Source)
			}
			sharedBy[p.Name][a] = p.RequiredBy
		}
	}
	for _, name := range slices.Sorted(maps.Keys(shared)) {
		p := shared[name]
		var all []string
		for _, by := range sharedBy[name] {
			all = append(all, by...)
		}
		p.RequiredBy = nil
		for _, by := range sortedUnique(all) {
			var needs, has []contract.Arch
			for _, a := range archs {
				if pinned[a][by] {
					has = append(has, a)
					if slices.Contains(sharedBy[name][a], by) {
						needs = append(needs, a)
					}
				}
			}
			if len(needs) == len(has) {
				p.RequiredBy = append(p.RequiredBy, by)
				continue
			}
			for _, a := range needs {
				p.RequiredBy = append(p.RequiredBy, by+":"+a.Info().Debian)
			}
		}
		out = append(out, p)
	}
	sortPackages(out)
	return out, nil
}

// sortPackages orders packages by name, then architecture, as the lock file lists them.
func sortPackages(pkgs []Package) {
	slices.SortFunc(pkgs, func(a, b Package) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Arch, b.Arch)
	})
}

func sortedUnique(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
