// Package debian turns a list of Debian package names into a lock file pinned from the archive's
// signed index (InRelease → Packages → dependency closure) and fetches the pinned .debs into a
// download cache outside the repository, verifying each against its pinned sha256.
package debian

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// Package is one pinned .deb.
type Package struct {
	Name     string `toml:"name"`
	Version  string `toml:"version"`
	Source   string `toml:"source,omitempty"` // name of the lock's [[source]] it is fetched from
	Filename string `toml:"filename"`         // path below the source's URL, e.g. pool/main/...
	Size     int64  `toml:"size"`
	SHA256   string `toml:"sha256"`
	// RequiredBy lists the pinned packages that depend on this one; empty for a wanted package
	// nothing else needs.
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
	Suite    string    `toml:"suite,omitempty"`
	Wanted   []string  `toml:"wanted,omitempty"`
	Exclude  []string  `toml:"exclude,omitempty"`
	Sources  []Source  `toml:"source,omitempty"`
	Packages []Package `toml:"package"`
	path     string
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// LoadLock reads and checks a lock file; errors name the file and the package.
func LoadLock(path string) (*Lock, error) {
	var l Lock
	md, err := toml.DecodeFile(path, &l)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		return nil, fmt.Errorf("lock %s: unknown key %q", path, u[0].String())
	}
	if err := l.check(); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	l.path = path
	return &l, nil
}

// check enforces what Fetcher and the builder rely on; WriteLock runs it too, so a lock that
// could not be loaded is never written.
func (l *Lock) check() error {
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
	seen := map[string]bool{}
	for i, p := range l.Packages {
		switch {
		case p.Name == "":
			return fmt.Errorf("package #%d has no name", i+1)
		case seen[p.Name]:
			return fmt.Errorf("package %s listed twice", p.Name)
		case p.Version == "" || p.Filename == "":
			return fmt.Errorf("package %s needs version and filename", p.Name)
		case !cleanRelative(p.Filename):
			return fmt.Errorf("package %s: filename %q must be a clean relative path", p.Name, p.Filename)
		case p.Size <= 0:
			return fmt.Errorf("package %s: size %d must be positive", p.Name, p.Size)
		case !sha256Hex.MatchString(p.SHA256):
			return fmt.Errorf("package %s: sha256 %q is not 64 lower-case hex digits", p.Name, p.SHA256)
		case len(l.Sources) > 0 && !sources[p.Source]:
			return fmt.Errorf("package %s: source %q is not one of the lock's [[source]] names", p.Name, p.Source)
		case len(l.Sources) == 0 && p.Source != "":
			return fmt.Errorf("package %s: source %q given but the lock has no [[source]] tables", p.Name, p.Source)
		}
		seen[p.Name] = true
	}
	return nil
}

// cleanRelative keeps a pool path from climbing out of the source's URL.
func cleanRelative(p string) bool {
	return p != "" && p != "." && p != ".." && !strings.HasPrefix(p, "/") && path.Clean(p) == p && !strings.HasPrefix(p, "../") &&
		!strings.ContainsAny(p, "?#\\")
}

// Find returns the pinned package of that name.
func (l *Lock) Find(name string) (Package, error) {
	for _, p := range l.Packages {
		if p.Name == name {
			return p, nil
		}
	}
	return Package{}, fmt.Errorf("lock %s: package %s is not pinned (add it to the wanted packages and run make lock)", l.path, name)
}

// Exists reports whether a lock file is present, to give a clear error early.
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
