package debian

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Entry is one binary package stanza of a Packages index.
type Entry struct {
	Name         string
	Version      Version
	Architecture string
	// Depends and Pre-Depends stay raw and are parsed when the resolver reaches the package, so a
	// malformed field in a package nobody wants does not stop a lock refresh.
	Depends    string
	PreDepends string
	Provides   []Relation
	Filename   string
	Size       int64
	SHA256     string
	SourcePkg  string // the Debian source package ("Source:"), defaulting to Name
	Priority   string
	Essential  bool
	MultiArch  string
	Origin     string // name of the archive Source this entry came from
}

// ParsePackages reads a Packages index and tags each entry with origin. It is strict about the
// fields a lock needs, since the file was verified against a signed InRelease.
func ParsePackages(r io.Reader, origin string) ([]Entry, error) {
	var out []Entry
	err := readStanzas(r, func(s stanza) error {
		e, err := entryFromStanza(s, origin)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

func entryFromStanza(s stanza, origin string) (Entry, error) {
	e := Entry{
		Name:         s.get("Package"),
		Architecture: s.get("Architecture"),
		Depends:      s.get("Depends"),
		PreDepends:   s.get("Pre-Depends"),
		Filename:     s.get("Filename"),
		SHA256:       s.get("SHA256"),
		SourcePkg:    s.get("Source"),
		Priority:     s.get("Priority"),
		Essential:    s.get("Essential") == "yes",
		MultiArch:    s.get("Multi-Arch"),
		Origin:       origin,
	}
	where := fmt.Sprintf("line %d: package %s", s.line, e.Name)
	if !validPackageName(e.Name) {
		return Entry{}, fmt.Errorf("line %d: bad or missing Package %q", s.line, e.Name)
	}
	var err error
	if e.Version, err = ParseVersion(s.get("Version")); err != nil {
		return Entry{}, fmt.Errorf("%s: %w", where, err)
	}
	if e.Architecture == "" || e.Filename == "" {
		return Entry{}, fmt.Errorf("%s: Architecture and Filename are required", where)
	}
	if !sha256Hex.MatchString(e.SHA256) {
		return Entry{}, fmt.Errorf("%s: SHA256 %q is not 64 lower-case hex digits", where, e.SHA256)
	}
	if e.Size, err = strconv.ParseInt(s.get("Size"), 10, 64); err != nil || e.Size <= 0 {
		return Entry{}, fmt.Errorf("%s: bad Size %q", where, s.get("Size"))
	}
	if e.Provides, err = ParseProvides(s.get("Provides")); err != nil {
		return Entry{}, fmt.Errorf("%s: %w", where, err)
	}
	if e.SourcePkg == "" {
		e.SourcePkg = e.Name
	}
	return e, nil
}

// Index holds the candidate of every package name for one architecture: the highest version over
// all sources, as apt would pick with default pinning.
type Index struct {
	arch string
	pkgs map[string]Entry
}

// NewIndex makes an empty index for arch ("amd64"); entries of other architectures are ignored.
func NewIndex(arch string) *Index {
	return &Index{arch: arch, pkgs: map[string]Entry{}}
}

// Add offers entries to the index. Of equal versions the one added first stays, so the order
// of sources decides ties.
func (x *Index) Add(entries ...Entry) {
	for _, e := range entries {
		if e.Architecture != x.arch && e.Architecture != "all" {
			continue
		}
		if old, ok := x.pkgs[e.Name]; ok && e.Version.Compare(old.Version) <= 0 {
			continue
		}
		x.pkgs[e.Name] = e
	}
}

// Lookup returns the candidate entry of a real (not virtual) package.
func (x *Index) Lookup(name string) (Entry, bool) {
	e, ok := x.pkgs[name]
	return e, ok
}

// Len is the number of distinct package names.
func (x *Index) Len() int { return len(x.pkgs) }

// provider is a candidate that provides a virtual name, possibly at a version.
type provider struct {
	entry    Entry
	provides Relation
}

// providers maps each virtual name to the candidates providing it, sorted by package name.
func (x *Index) providers() map[string][]provider {
	m := map[string][]provider{}
	for _, e := range x.pkgs {
		for _, p := range e.Provides {
			m[p.Name] = append(m[p.Name], provider{entry: e, provides: p})
		}
	}
	for _, ps := range m {
		sort.Slice(ps, func(i, j int) bool { return ps[i].entry.Name < ps[j].entry.Name })
	}
	return m
}

// priorityRank orders Debian priorities so a virtual package resolves to its most basic provider.
func priorityRank(p string) int {
	switch strings.ToLower(p) {
	case "required":
		return 0
	case "important":
		return 1
	case "standard":
		return 2
	case "optional":
		return 3
	}
	return 4
}
