// Package debian fetches Debian binary packages pinned in a lock file, verifies them against the
// pinned sha256 and keeps them in a download cache outside the repository.
package debian

import (
	"fmt"
	"os"
	"regexp"

	"github.com/BurntSushi/toml"
)

// Package is one pinned .deb.
type Package struct {
	Name     string `toml:"name"`
	Version  string `toml:"version"`
	Filename string `toml:"filename"` // path below the mirror root, e.g. pool/main/...
	Size     int64  `toml:"size"`
	SHA256   string `toml:"sha256"`
}

// Lock is the parsed lock file.
type Lock struct {
	Suite    string    `toml:"suite"`
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
	seen := map[string]bool{}
	for i, p := range l.Packages {
		switch {
		case p.Name == "":
			return nil, fmt.Errorf("lock %s: package #%d has no name", path, i+1)
		case seen[p.Name]:
			return nil, fmt.Errorf("lock %s: package %s listed twice", path, p.Name)
		case p.Version == "" || p.Filename == "":
			return nil, fmt.Errorf("lock %s: package %s needs version and filename", path, p.Name)
		case !sha256Hex.MatchString(p.SHA256):
			return nil, fmt.Errorf("lock %s: package %s: sha256 %q is not 64 lower-case hex digits", path, p.Name, p.SHA256)
		}
		seen[p.Name] = true
	}
	l.path = path
	return &l, nil
}

// Find returns the pinned package of that name.
func (l *Lock) Find(name string) (Package, error) {
	for _, p := range l.Packages {
		if p.Name == name {
			return p, nil
		}
	}
	return Package{}, fmt.Errorf("lock %s: package %s is not pinned (add it to the lock file)", l.path, name)
}

// Exists reports whether a lock file is present, to give a clear error early.
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
