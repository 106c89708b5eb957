// Package gocomponents builds the third-party Go programs of a Ballast image (containerd, runc, CNI
// plugins, the kubelet, gVisor), and those only tests run (a Kubernetes control plane), from
// module versions pinned in packages/go-components.toml. Sources come through the Go module proxy
// and are trusted only when their h1: hash equals the pin; outputs are static, reproducible
// binaries cached under a hash of everything that can change their bytes.
package gocomponents

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
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
	// StringVars are package-qualified string variables set to fixed values with -ldflags -X (the
	// parts of a version string a program reads apart, a fixed build date): variable → value.
	StringVars map[string]string `toml:"string_vars"`
	// Wrapper is a directory, relative to the pin file's, holding the go.mod and go.sum of a
	// module that requires Module@Version and is built as the main module instead of it: for
	// modules that cannot be built as themselves (Kubernetes' go.mod replaces its staging modules
	// with directories its zip lacks). Binary packages are then import paths inside Module.
	Wrapper string `toml:"wrapper"`
	// TestOnly marks a component whose binaries only tests run (a control plane to join): built
	// into the same cache, never installed in an image nor listed in its SBOM.
	TestOnly bool `toml:"test_only"`
	// PkgConfig names the C libraries (pkg-config names) a cgo component links in statically; their
	// versions and archives are part of the cache key.
	PkgConfig []string     `toml:"pkg_config"`
	Binaries  []BinarySpec `toml:"binary"`

	// wrapper is the content of Wrapper's files, read by Load: the build uses these bytes, not
	// the files again, so the cache key and the build cannot see different versions.
	wrapper wrapperFiles
}

// WithoutTestOnly is c without its test-only binaries, for an image of another architecture than
// the tests': they run test-only binaries on their own machine only, and the four programs of
// Kubernetes would take three times the kubelet's compile. Its cache key differs from c's.
func (c Component) WithoutTestOnly() Component {
	out := c
	out.Binaries = nil
	for _, b := range c.Binaries {
		if !b.TestOnly {
			out.Binaries = append(out.Binaries, b)
		}
	}
	return out
}

// ForArch is c as built for goarch: whole for this machine, without its test-only binaries for
// another architecture (WithoutTestOnly), since tests run those here only.
func (c Component) ForArch(goarch string) Component {
	if goarch == runtime.GOARCH {
		return c
	}
	return c.WithoutTestOnly()
}

// BinarySpec is one main package of a component and where the image installs it.
type BinarySpec struct {
	Name string `toml:"name"`
	// Package is relative to the module root ("." or "./cmd/x"), or for a wrapper component an
	// import path inside the module ("k8s.io/kubernetes/cmd/kubelet").
	Package string `toml:"package"`
	Install string `toml:"install"` // absolute path in the image; none for a test-only binary
	// Tags are added to the component's tags for this binary only.
	Tags []string `toml:"tags"`
	// DevOnly installs the binary in dev variants only (a debugging tool); it is built either
	// way, so the cache key does not depend on the variant.
	DevOnly bool `toml:"dev_only"`
	// TestOnly builds the binary for tests only: it has no install path and no image gets it.
	TestOnly bool `toml:"test_only"`
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
	stringValRe  = regexp.MustCompile(`^[^\s'"\\]+$`)
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
	for i := range p.Components {
		c := &p.Components[i]
		if c.Wrapper == "" {
			continue
		}
		w, err := loadWrapper(filepath.Join(filepath.Dir(file), filepath.FromSlash(c.Wrapper)), *c)
		if err != nil {
			return nil, fmt.Errorf("gocomponents: %s: component %s: wrapper %s: %w", file, c.Name, c.Wrapper, err)
		}
		c.wrapper = w
	}
	return &p, nil
}

func (p *Pins) validate() error {
	if len(p.Components) == 0 {
		return errors.New("no [[component]] pinned")
	}
	names := map[string]bool{}
	for i, c := range p.Components {
		if err := c.validate(); err != nil {
			return fmt.Errorf("component #%d (%s): %w", i+1, c.Name, err)
		}
		if names[c.Name] {
			return fmt.Errorf("component %s is pinned twice", c.Name)
		}
		names[c.Name] = true
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
	for _, v := range slices.Sorted(maps.Keys(c.StringVars)) {
		if !versionVarRe.MatchString(v) {
			return fmt.Errorf("string_vars: %q is not a package-qualified variable like example.com/m/version.Version", v)
		}
		if slices.Contains(c.VersionVars, v) {
			return fmt.Errorf("string_vars: %s is also in version_vars", v)
		}
		if !stringValRe.MatchString(c.StringVars[v]) {
			return fmt.Errorf("string_vars: %s = %q: want a value without spaces or quotes (it goes into -ldflags)", v, c.StringVars[v])
		}
	}
	if c.Wrapper != "" && !validWrapperDir(c.Wrapper) {
		return fmt.Errorf("wrapper %q: want a clean relative directory like wrappers/name", c.Wrapper)
	}
	for _, l := range c.PkgConfig {
		if !nameRe.MatchString(l) {
			return fmt.Errorf("pkg_config: %q is not a pkg-config package name", l)
		}
	}
	// Two components may install the same path (containerd with and without CRI): a variant
	// lists one of them, and the image builder refuses a variant that lists both.
	seen := map[string]bool{}
	installs := map[string]string{}
	for j, b := range c.Binaries {
		if err := b.validate(c); err != nil {
			return fmt.Errorf("binary #%d (%s): %w", j+1, b.Name, err)
		}
		if seen[b.Name] {
			return fmt.Errorf("binary %s is listed twice", b.Name)
		}
		seen[b.Name] = true
		if other, ok := installs[b.Install]; ok && b.Install != "" {
			return fmt.Errorf("binary %s: install path %s is also used by %s", b.Name, b.Install, other)
		}
		installs[b.Install] = b.Name
	}
	return nil
}

func (b BinarySpec) validate(c Component) error {
	testOnly := c.TestOnly || b.TestOnly
	switch {
	case !nameRe.MatchString(b.Name):
		return fmt.Errorf("name %q: want letters, digits and ._+-", b.Name)
	case c.Wrapper == "" && !validPackage(b.Package):
		return fmt.Errorf("package %q: want \".\" or a clean \"./dir\" inside the module", b.Package)
	case c.Wrapper != "" && !inModule(b.Package, c.Module):
		// Only the pinned module's packages are vouched for by its sum; anything else the
		// wrapper's go.sum lists is a dependency, not what the pin names.
		return fmt.Errorf("package %q: a wrapper component builds import paths inside %s", b.Package, c.Module)
	case testOnly && b.Install != "":
		return fmt.Errorf("install %q: a test-only binary is never installed", b.Install)
	case testOnly && b.DevOnly:
		return errors.New("dev_only: a test-only binary is never installed")
	case !testOnly && (!path.IsAbs(b.Install) || path.Clean(b.Install) != b.Install || b.Install == "/"):
		return fmt.Errorf("install %q: want a clean absolute path in the image", b.Install)
	}
	return checkTags(b.Tags)
}

// inModule accepts a clean import path of module or below it.
func inModule(pkg, module string) bool {
	rest, ok := strings.CutPrefix(pkg, module)
	if !ok || (rest != "" && rest[0] != '/') {
		return false
	}
	return pkg == module || (moduleRe.MatchString(pkg) && path.Clean(pkg) == pkg && !strings.Contains(pkg, "..."))
}

// validWrapperDir keeps a wrapper inside the directory of the pin file, so the repository holds
// every byte the build reads.
func validWrapperDir(d string) bool {
	return !path.IsAbs(d) && path.Clean(d) == d && d != "." && d != ".." && !strings.HasPrefix(d, "../") &&
		!strings.Contains(d, "\\")
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
