// Package debian turns lists of Debian package names, one per architecture, into a lock file
// pinned from the archive's signed index (InRelease → Packages of each architecture → dependency
// closure) and fetches the pinned .debs into a download cache outside the repository, verifying
// each against its pinned sha256.
package debian

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/ballast-os/ballast/contract"
)

// ArchAll is the Debian architecture of packages that are the same on every architecture
// (Architecture: all): the lock pins them once for all its architectures.
const ArchAll = "all"

// Package is one pinned .deb.
type Package struct {
	Name string `toml:"name"`
	// Arch is the package's Debian architecture: the Debian name of one of the lock's
	// architectures (contract.ArchInfo.Debian), or ArchAll.
	Arch     string `toml:"arch"`
	Version  string `toml:"version"`
	Source   string `toml:"source,omitempty"` // name of the lock's [[source]] it is fetched from
	Filename string `toml:"filename"`         // path below the source's URL, e.g. pool/main/...
	Size     int64  `toml:"size"`
	SHA256   string `toml:"sha256"`
	// RequiredBy lists the pinned packages that depend on this one; empty for a wanted package
	// nothing else needs. A name counts on every architecture where both packages are pinned; a
	// name with a suffix (":arm64", as dpkg spells it) only on that architecture, which is how an
	// Architecture: all package records a dependent that needs it on some architectures only.
	RequiredBy []string `toml:"required_by,omitempty"`
}

// Source is one archive section the lock was resolved from.
type Source struct {
	Name      string `toml:"name"`      // what packages refer to, e.g. "bookworm-security"
	URL       string `toml:"url"`       // archive root, e.g. http://deb.debian.org/debian-security
	Suite     string `toml:"suite"`     // dists/<suite>
	Component string `toml:"component"` // e.g. "main"
}

// Lock is the parsed lock file.
type Lock struct {
	// Suite is only set by hand-pinned lock files from before sources were recorded.
	Suite string
	// Architectures are the ones the lock resolved, in contract.Archs order. A lock file without
	// them predates arm64: its packages and its wanted list are contract.DefaultArch's.
	Architectures []contract.Arch
	// Wanted are the names each architecture's closure was resolved from.
	Wanted   map[contract.Arch][]string
	Exclude  []string
	Sources  []Source
	Packages []Package
	path     string
}

// lockFile is the TOML layout; wanted is a table of lists by architecture, or, in lock files
// from before arm64, one list.
type lockFile struct {
	Suite         string         `toml:"suite,omitempty"`
	Architectures []string       `toml:"architectures,omitempty"`
	Wanted        toml.Primitive `toml:"wanted,omitempty"`
	Exclude       []string       `toml:"exclude,omitempty"`
	Sources       []Source       `toml:"source,omitempty"`
	Packages      []Package      `toml:"package"`
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// LoadLock reads and checks a lock file; errors name the file, the package and the architecture.
func LoadLock(path string) (*Lock, error) {
	l, err := decodeLock(path)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := l.check(); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	l.path = path
	return l, nil
}

func decodeLock(path string) (*Lock, error) {
	var f lockFile
	md, err := toml.DecodeFile(path, &f)
	if err != nil {
		return nil, err
	}
	l := &Lock{Suite: f.Suite, Exclude: f.Exclude, Sources: f.Sources, Packages: f.Packages}
	legacy := !md.IsDefined("architectures")
	for _, a := range f.Architectures {
		l.Architectures = append(l.Architectures, contract.Arch(a))
	}
	if legacy {
		l.Architectures = []contract.Arch{contract.DefaultArch}
	}
	if md.IsDefined("wanted") {
		if l.Wanted, err = decodeWanted(md, f.Wanted, legacy); err != nil {
			return nil, err
		}
	}
	if u := md.Undecoded(); len(u) > 0 {
		return nil, fmt.Errorf("unknown key %q", u[0].String())
	}
	if legacy {
		// Debian's pool names every .deb name_version_arch.deb, so the file says which of the
		// old lock's packages are the ones for all architectures.
		for i, p := range l.Packages {
			switch {
			case p.Arch != "":
			case strings.HasSuffix(p.Filename, "_"+ArchAll+".deb"):
				l.Packages[i].Arch = ArchAll
			default:
				l.Packages[i].Arch = contract.DefaultArch.Info().Debian
			}
		}
	}
	return l, nil
}

// decodeWanted reads `wanted = [...]` (a lock without architectures: the default one's) or a
// [wanted] table of lists by architecture.
func decodeWanted(md toml.MetaData, p toml.Primitive, legacy bool) (map[contract.Arch][]string, error) {
	if md.Type("wanted") == "Array" {
		if !legacy {
			return nil, fmt.Errorf("wanted: a lock with architectures lists wanted packages in a [wanted] table by architecture")
		}
		var list []string
		if err := md.PrimitiveDecode(p, &list); err != nil {
			return nil, fmt.Errorf("wanted: %w", err)
		}
		return map[contract.Arch][]string{contract.DefaultArch: list}, nil
	}
	var byArch map[string][]string
	if err := md.PrimitiveDecode(p, &byArch); err != nil {
		return nil, fmt.Errorf("wanted: %w", err)
	}
	out := map[contract.Arch][]string{}
	for a, list := range byArch {
		out[contract.Arch(a)] = list
	}
	return out, nil
}

// check enforces what Fetcher and the builder rely on; WriteLock runs it too, so a lock that
// could not be loaded is never written.
func (l *Lock) check() error {
	if len(l.Architectures) == 0 {
		return fmt.Errorf("no architectures")
	}
	debArch := map[string]bool{ArchAll: true}
	for _, a := range l.Architectures {
		p, err := contract.ParseArch(string(a))
		if err != nil || p != a {
			return fmt.Errorf("architectures: %q is not one of %v", a, contract.Archs())
		}
		if debArch[a.Info().Debian] {
			return fmt.Errorf("architectures: %s listed twice", a)
		}
		debArch[a.Info().Debian] = true
	}
	for a := range l.Wanted {
		if !slices.Contains(l.Architectures, a) {
			return fmt.Errorf("wanted: architecture %q is not among the lock's architectures %v", a, l.Architectures)
		}
	}
	sources := map[string]bool{}
	for i, s := range l.Sources {
		switch {
		case s.Name == "":
			return fmt.Errorf("source #%d has no name", i+1)
		case sources[s.Name]:
			return fmt.Errorf("source %s listed twice", s.Name)
		case s.Suite == "" || s.Component == "":
			return fmt.Errorf("source %s needs suite and component", s.Name)
		}
		if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("source %s: url %q is not an http(s) URL", s.Name, s.URL)
		}
		sources[s.Name] = true
	}
	// A name is pinned at most once per architecture: once for all, or once for each.
	archsOf := map[string][]string{}
	for i, p := range l.Packages {
		switch {
		case p.Name == "":
			return fmt.Errorf("package #%d has no name", i+1)
		case !debArch[p.Arch]:
			return fmt.Errorf("package %s: arch %q is not %s nor the Debian name of one of the lock's architectures %v", p.Name, p.Arch, ArchAll, l.Architectures)
		case slices.Contains(archsOf[p.Name], p.Arch):
			return fmt.Errorf("package %s (%s) listed twice", p.Name, p.Arch)
		case len(archsOf[p.Name]) > 0 && (p.Arch == ArchAll || slices.Contains(archsOf[p.Name], ArchAll)):
			return fmt.Errorf("package %s pinned for %s and for %s: an %s package is pinned once for every architecture", p.Name, archsOf[p.Name][0], p.Arch, ArchAll)
		case p.Version == "" || p.Filename == "":
			return fmt.Errorf("package %s (%s) needs version and filename", p.Name, p.Arch)
		case !cleanRelative(p.Filename):
			return fmt.Errorf("package %s (%s): filename %q must be a clean relative path", p.Name, p.Arch, p.Filename)
		case p.Size <= 0:
			return fmt.Errorf("package %s (%s): size %d must be positive", p.Name, p.Arch, p.Size)
		case !sha256Hex.MatchString(p.SHA256):
			return fmt.Errorf("package %s (%s): sha256 %q is not 64 lower-case hex digits", p.Name, p.Arch, p.SHA256)
		case len(l.Sources) > 0 && !sources[p.Source]:
			return fmt.Errorf("package %s (%s): source %q is not one of the lock's [[source]] names", p.Name, p.Arch, p.Source)
		case len(l.Sources) == 0 && p.Source != "":
			return fmt.Errorf("package %s (%s): source %q given but the lock has no [[source]] tables", p.Name, p.Arch, p.Source)
		}
		for _, by := range p.RequiredBy {
			if _, a, ok := strings.Cut(by, ":"); ok && (a == ArchAll || !debArch[a]) {
				return fmt.Errorf("package %s (%s): required_by %q: %q is not the Debian name of one of the lock's architectures", p.Name, p.Arch, by, a)
			}
		}
		archsOf[p.Name] = append(archsOf[p.Name], p.Arch)
	}
	return nil
}

// cleanRelative keeps a pool path from climbing out of the source's URL.
func cleanRelative(p string) bool {
	return p != "" && p != "." && p != ".." && !strings.HasPrefix(p, "/") && path.Clean(p) == p && !strings.HasPrefix(p, "../") &&
		!strings.ContainsAny(p, "?#\\")
}

// Find returns the package of that name pinned for arch: the architecture's own, or the one
// pinned for all.
func (l *Lock) Find(name string, arch contract.Arch) (Package, error) {
	if err := l.hasArch(arch); err != nil {
		return Package{}, err
	}
	for _, p := range l.Packages {
		if p.Name == name && l.visible(p, arch) {
			return p, nil
		}
	}
	return Package{}, l.notPinned(name, arch)
}

// visible says whether p is installed on arch.
func (l *Lock) visible(p Package, arch contract.Arch) bool {
	return p.Arch == ArchAll || p.Arch == arch.Info().Debian
}

func (l *Lock) hasArch(arch contract.Arch) error {
	if !slices.Contains(l.Architectures, arch) {
		return fmt.Errorf("lock %s: architecture %s is not locked (the lock has %v; add a variant for it and run make lock)", l.path, arch, l.Architectures)
	}
	return nil
}

func (l *Lock) notPinned(name string, arch contract.Arch) error {
	return fmt.Errorf("lock %s: package %s is not pinned for %s (add it to the wanted packages and run make lock)", l.path, name, arch)
}

// Exists reports whether a lock file is present, to give a clear error early.
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
