package debian

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Refresh fetches every source's InRelease, verifies it with keys, fetches and checks the Packages
// index it lists, and resolves wanted over all of them (the highest version of each name wins,
// ties going to the earlier source). The result is ready for WriteLock.
func Refresh(ctx context.Context, sources []Source, keys *Keyring, wanted, exclude []string) (*Lock, error) {
	return refresh(ctx, newArchive(keys), sources, wanted, exclude, func(string, ...any) {})
}

func refresh(ctx context.Context, a *archive, sources []Source, wanted, exclude []string, log func(string, ...any)) (*Lock, error) {
	// An empty result would silently replace a good lock with one that pins nothing.
	if len(sources) == 0 || len(wanted) == 0 {
		return nil, fmt.Errorf("lock refresh: need at least one source and one wanted package (got %d and %d)", len(sources), len(wanted))
	}
	if err := (&Lock{Sources: sources}).check(); err != nil {
		return nil, fmt.Errorf("lock refresh: %w", err)
	}
	type result struct {
		entries []Entry
		rel     *Release
		err     error
	}
	// Sources download in parallel; each goroutine writes only its own slot.
	results := make([]result, len(sources))
	var wg sync.WaitGroup
	for i, src := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			r.entries, r.rel, r.err = a.index(ctx, src)
		}()
	}
	wg.Wait()
	idx := NewIndex(a.arch)
	for i, r := range results {
		if r.err != nil {
			return nil, fmt.Errorf("lock refresh: %w", r.err)
		}
		log("source %s: %s %s of %s, signed by %s, %d packages", sources[i].Name, r.rel.Codename,
			sources[i].Component, r.rel.Date.UTC().Format(time.DateTime), r.rel.SignedBy, len(r.entries))
		idx.Add(r.entries...)
	}
	pkgs, err := Resolve(idx, wanted, ResolveOptions{Exclude: exclude})
	if err != nil {
		return nil, fmt.Errorf("lock refresh: %w", err)
	}
	return &Lock{
		Wanted:   sortedUnique(wanted),
		Exclude:  sortedUnique(exclude),
		Sources:  slices.Clone(sources),
		Packages: pkgs,
	}, nil
}

func sortedUnique(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
