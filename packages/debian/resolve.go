package debian

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ResolveOptions tune Resolve.
type ResolveOptions struct {
	// Exclude names packages (real or virtual) that are never installed; a dependency on one
	// counts as met. Images run no maintainer scripts and have no package manager, so e.g. dpkg
	// and debconf would be dead weight. Wanted names must not be excluded.
	Exclude []string
}

// Resolve returns the dependency closure of names over Pre-Depends and Depends (Recommends and
// Suggests are ignored), sorted by name, each package recording who required it. For an
// alternative "a | b" a package already selected (or excluded) wins, else the first one available
// in a version that fits. All problems found are reported together.
func Resolve(idx *Index, names []string, opts ResolveOptions) ([]Package, error) {
	r := &resolver{
		idx:       idx,
		providers: idx.providers(),
		exclude:   map[string]bool{},
		selected:  map[string]*selection{},
	}
	for _, n := range opts.Exclude {
		r.exclude[n] = true
	}
	wanted := append([]string(nil), names...)
	sort.Strings(wanted)
	var errs []error
	for _, n := range wanted {
		if err := r.want(n); err != nil {
			errs = append(errs, err)
		}
	}
	// Breadth first from the sorted wanted names, so the choices among alternatives, which depend
	// on what is already selected, come out the same on every run.
	for len(r.queue) > 0 {
		name := r.queue[0]
		r.queue = r.queue[1:]
		errs = append(errs, r.expand(r.selected[name])...)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("resolve %s: %w", strings.Join(wanted, " "), errors.Join(errs...))
	}
	out := make([]Package, 0, len(r.selected))
	for _, s := range r.selected {
		out = append(out, s.pkg())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

type resolver struct {
	idx       *Index
	providers map[string][]provider
	exclude   map[string]bool
	selected  map[string]*selection
	queue     []string
}

type selection struct {
	entry      Entry
	requiredBy map[string]bool
}

func (s *selection) pkg() Package {
	p := Package{
		Name:     s.entry.Name,
		Arch:     s.entry.Architecture,
		Version:  s.entry.Version.String(),
		Filename: s.entry.Filename,
		Size:     s.entry.Size,
		SHA256:   s.entry.SHA256,
		Source:   s.entry.Origin,
	}
	for n := range s.requiredBy {
		p.RequiredBy = append(p.RequiredBy, n)
	}
	sort.Strings(p.RequiredBy)
	return p
}

func (r *resolver) want(name string) error {
	if r.exclude[name] {
		return fmt.Errorf("package %s is both wanted and excluded", name)
	}
	if e, ok := r.idx.Lookup(name); ok {
		r.add(e, "")
		return nil
	}
	if ps := r.providers[name]; len(ps) > 0 {
		return fmt.Errorf("package %s is virtual, provided by %s: name one of them", name, providerNames(ps))
	}
	return fmt.Errorf("package %s not found in the index", name)
}

// add selects e (once) and notes who asked for it; by is "" for a wanted name.
func (r *resolver) add(e Entry, by string) {
	s, ok := r.selected[e.Name]
	if !ok {
		s = &selection{entry: e, requiredBy: map[string]bool{}}
		r.selected[e.Name] = s
		r.queue = append(r.queue, e.Name)
	}
	if by != "" && by != e.Name {
		s.requiredBy[by] = true
	}
}

func (r *resolver) expand(s *selection) []error {
	var errs []error
	for _, f := range []struct{ field, value string }{{"Pre-Depends", s.entry.PreDepends}, {"Depends", s.entry.Depends}} {
		deps, err := ParseDepends(f.value)
		if err != nil {
			errs = append(errs, fmt.Errorf("package %s %s: %s: %w", s.entry.Name, s.entry.Version, f.field, err))
			continue
		}
		for _, alts := range deps {
			if err := r.satisfy(s.entry, f.field, alts); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// satisfy meets one dependency of e: by a selected or excluded package if one fits, else by the
// first alternative available in a fitting version.
func (r *resolver) satisfy(e Entry, field string, alts Alternatives) error {
	for _, a := range alts {
		if c, ok := r.fitting(a, r.isSelected); ok {
			r.add(c, e.Name)
			return nil
		}
	}
	for _, a := range alts {
		if r.exclude[a.Name] {
			return nil
		}
		if _, ok := r.fitting(a, r.isExcluded); ok {
			return nil // provided by an excluded package
		}
	}
	for _, a := range alts {
		if c, ok := r.fitting(a, func(Entry) bool { return true }); ok {
			r.add(c, e.Name)
			return nil
		}
	}
	return r.unsatisfiable(e, field, alts)
}

func (r *resolver) isSelected(c Entry) bool { _, ok := r.selected[c.Name]; return ok }
func (r *resolver) isExcluded(c Entry) bool { return r.exclude[c.Name] }

// fitting finds a candidate for relation a among those accepted by ok: the real package of that
// name, else a provider, preferring the most basic priority and then the name. A provided name
// satisfies a versioned relation only when provided with a version, as in dpkg.
func (r *resolver) fitting(a Relation, ok func(Entry) bool) (Entry, bool) {
	if e, found := r.idx.Lookup(a.Name); found && ok(e) && a.Satisfied(e.Version) {
		return e, true
	}
	var best *provider
	for i, p := range r.providers[a.Name] {
		if !ok(p.entry) || (a.Op != "" && (p.provides.Op == "" || !a.Satisfied(p.provides.Version))) {
			continue
		}
		if best == nil || priorityRank(p.entry.Priority) < priorityRank(best.entry.Priority) {
			best = &r.providers[a.Name][i]
		}
	}
	if best == nil {
		return Entry{}, false
	}
	return best.entry, true
}

// unsatisfiable explains a dependency nothing meets, naming the package, the dependency and what
// the index offers instead.
func (r *resolver) unsatisfiable(e Entry, field string, alts Alternatives) error {
	var offers []string
	for _, a := range alts {
		if c, ok := r.idx.Lookup(a.Name); ok {
			offers = append(offers, fmt.Sprintf("candidate %s %s does not satisfy %s", c.Name, c.Version, a))
		}
		for _, p := range r.providers[a.Name] {
			offers = append(offers, fmt.Sprintf("%s %s provides %s", p.entry.Name, p.entry.Version, p.provides))
		}
	}
	who := fmt.Sprintf("%s %s", e.Name, e.Version)
	if len(offers) == 0 {
		if len(alts) == 1 {
			return fmt.Errorf("package %s not found (required by %s, %s: %s)", alts[0].Name, who, field, alts)
		}
		return fmt.Errorf("none of %s found (required by %s, %s)", alts, who, field)
	}
	return fmt.Errorf("package %s, %s: %s: unsatisfiable: %s", who, field, alts, strings.Join(offers, "; "))
}

func providerNames(ps []provider) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.entry.Name
	}
	return strings.Join(s, ", ")
}
