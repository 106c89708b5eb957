// Package gocomponents builds the third-party Go programs of a Ballast image (containerd, runc, CNI
// plugins) from module versions pinned in packages/go-components.toml. Sources come through the Go
// module proxy and are trusted only when their h1: hash equals the pin; outputs are static,
// reproducible binaries cached under a hash of everything that can change their bytes.
package gocomponents

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// Component is one pinned Go module and the programs built from it.
type Component struct {
	Name    string `toml:"name"`
	Module  string `toml:"module"`
	Version string `toml:"version"`
	// Sum is the go.sum hash of the module zip ("h1:..."), as `go mod download -json` reports it.
	Sum string `toml:"sum"`
	// CGO builds with the C toolchain and links statically (static-pie); otherwise CGO_ENABLED=0.
	CGO  bool     `toml:"cgo"`
	Tags []string `toml:"tags"`
	// VersionVars are package-qualified string variables set to Version with -ldflags -X.
	VersionVars []string `toml:"version_vars"`
	// PkgConfig names the C libraries (pkg-config names) a cgo component links in statically; their
	// versions and archives are part of the cache key.
	PkgConfig []string     `toml:"pkg_config"`
	Binaries  []BinarySpec `toml:"binary"`
}

// BinarySpec is one main package of a component and where the image installs it.
type BinarySpec struct {
	Name    string `toml:"name"`
	Package string `toml:"package"` // relative to the module root: "." or "./cmd/x"
	Install string `toml:"install"` // absolute path in the image
	// Tags are added to the component's tags for this binary only.
	Tags []string `toml:"tags"`
	// DevOnly installs the binary in dev variants only (a debugging tool); it is built either
	// way, so the cache key does not depend on the variant.
	DevOnly bool `toml:"dev_only"`
}

// Pins is a parsed pin file.
type Pins struct {
	Components []Component `toml:"component"`
}

var (
	nameRe       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)
	moduleRe     = regexp.MustCompile(`^[a-z0-9.-]+\.[a-z]+(/[A-Za-z0-9._~-]+)+$`)
	versionRe    = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	sumRe        = regexp.MustCompile(`^h1:[A-Za-z0-9+/]{43}=$`)
	tagRe        = regexp.MustCompile(`^[A-Za-z0-9_.]+$`)
	versionVarRe = regexp.MustCompile(`^[A-Za-z0-9._~/-]+\.[A-Za-z_][A-Za-z0-9_]*$`)
)

// Load reads and checks a pin file. Unknown keys are rejected so a typo cannot silently drop a build
// tag; every error names the file and the component or key at fault.
func Load(file string) (*Pins, error) {
	var p Pins
	md, err := toml.DecodeFile(file, &p)
	if err != nil {
		return nil, fmt.Errorf("gocomponents: %s: %w", file, err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		return nil, fmt.Errorf("gocomponents: %s: unknown key %q", file, u[0].String())
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("gocomponents: %s: %w", file, err)
	}
	return &p, nil
}

func (p *Pins) validate() error {
	if len(p.Components) == 0 {
		return errors.New("no [[component]] pinned")
	}
	names := map[string]bool{}
	installs := map[string]string{}
	for i, c := range p.Components {
		if err := c.validate(); err != nil {
			return fmt.Errorf("component #%d (%s): %w", i+1, c.Name, err)
		}
		if names[c.Name] {
			return fmt.Errorf("component %s is pinned twice", c.Name)
		}
		names[c.Name] = true
		for _, b := range c.Binaries {
			if other, ok := installs[b.Install]; ok {
				return fmt.Errorf("component %s: install path %s is also used by %s", c.Name, b.Install, other)
			}
			installs[b.Install] = c.Name + "/" + b.Name
		}
	}
	return nil
}

func (c Component) validate() error {
	switch {
	case !nameRe.MatchString(c.Name):
		return fmt.Errorf("name %q: want letters, digits and ._+-", c.Name)
	case !moduleRe.MatchString(c.Module):
		return fmt.Errorf("module %q is not a Go module path", c.Module)
	case !versionRe.MatchString(c.Version):
		return fmt.Errorf("version %q is not an exact semantic version like v1.2.3", c.Version)
	case !sumRe.MatchString(c.Sum):
		return fmt.Errorf("sum %q: want the module's go.sum hash, h1: and 44 base64 characters", c.Sum)
	case len(c.PkgConfig) > 0 && !c.CGO:
		return errors.New("pkg_config needs cgo = true")
	case len(c.Binaries) == 0:
		return errors.New("no [[component.binary]]")
	}
	if err := checkTags(c.Tags); err != nil {
		return err
	}
	for _, v := range c.VersionVars {
		if !versionVarRe.MatchString(v) {
			return fmt.Errorf("version_vars: %q is not a package-qualified variable like example.com/m/version.Version", v)
		}
	}
	for _, l := range c.PkgConfig {
		if !nameRe.MatchString(l) {
			return fmt.Errorf("pkg_config: %q is not a pkg-config package name", l)
		}
	}
	seen := map[string]bool{}
	for j, b := range c.Binaries {
		if err := b.validate(); err != nil {
			return fmt.Errorf("binary #%d (%s): %w", j+1, b.Name, err)
		}
		if seen[b.Name] {
			return fmt.Errorf("binary %s is listed twice", b.Name)
		}
		seen[b.Name] = true
	}
	return nil
}

func (b BinarySpec) validate() error {
	switch {
	case !nameRe.MatchString(b.Name):
		return fmt.Errorf("name %q: want letters, digits and ._+-", b.Name)
	case !validPackage(b.Package):
		return fmt.Errorf("package %q: want \".\" or a clean \"./dir\" inside the module", b.Package)
	case !path.IsAbs(b.Install) || path.Clean(b.Install) != b.Install || b.Install == "/":
		return fmt.Errorf("install %q: want a clean absolute path in the image", b.Install)
	}
	return checkTags(b.Tags)
}

// validPackage accepts one main package inside the module: a pattern like ./... would build many
// programs under one name, and .. would leave the verified module.
func validPackage(p string) bool {
	if p == "." {
		return true
	}
	rest, ok := strings.CutPrefix(p, "./")
	return ok && rest != "" && path.Clean(rest) == rest && rest != ".." &&
		!strings.HasPrefix(rest, "../") && !strings.Contains(rest, "...")
}

func checkTags(tags []string) error {
	for _, t := range tags {
		if !tagRe.MatchString(t) {
			return fmt.Errorf("tags: %q is not a build tag", t)
		}
	}
	return nil
}

// Find returns the component of that name.
func (p *Pins) Find(name string) (Component, error) {
	for _, c := range p.Components {
		if c.Name == name {
			return c, nil
		}
	}
	return Component{}, fmt.Errorf("gocomponents: component %s is not pinned", name)
}
