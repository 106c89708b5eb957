package sbom

import (
	"debug/buildinfo"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/ballast-os/ballast/packages/digest"
)

// goBinary is what one Go executable says about itself.
type goBinary struct {
	GoBinary
	SHA256    string
	GoVersion string // e.g. go1.26.8
	Package   string // main package path
	Main      goModule
	Deps      []goModule // linked modules other than the main one, in the binary's order
	Settings  []debug.BuildSetting
}

// goModule identifies one module as linked: after any replace directive has been applied.
type goModule struct {
	Path     string
	Version  string // "" when unknown: a (devel) main module or a directory replacement
	Sum      string // go.sum "h1:" hash, "" when the toolchain recorded none
	Replaces string // path@version that a replace directive swapped for this module
	Dir      string // the directory a replace directive pointed at, instead of a module version
	Devel    bool   // main module built from a source tree; Version then came from GoBinary.DevelVersion
	Stdlib   bool
}

// key identifies a module across binaries: a directory replacement is its own thing, since its code
// is whatever that directory held.
func (m goModule) key() string {
	if m.Dir != "" {
		return "gomod:" + m.Path + "=>" + m.Dir
	}
	return "gomod:" + m.Path + "@" + m.Version
}

// readGoBinary reads the build information the Go toolchain embeds in every binary. It is read back
// from the file that goes into the image, not from go.mod, so the SBOM lists exactly what was linked.
func readGoBinary(b GoBinary) (goBinary, error) {
	info, err := buildinfo.ReadFile(b.HostPath)
	if err != nil {
		return goBinary{}, fmt.Errorf("go binary %s (%s): %w", b.Path, b.HostPath, err)
	}
	sum, err := digest.File(b.HostPath)
	if err != nil {
		return goBinary{}, fmt.Errorf("go binary %s: %w", b.Path, err)
	}
	out := goBinary{GoBinary: b, SHA256: sum, Package: info.Path, Settings: info.Settings}
	if f := strings.Fields(info.GoVersion); len(f) > 0 {
		out.GoVersion = f[0]
	}
	// A binary built from a lone file (go build x.go) has no main module; Main stays empty.
	if info.Main.Path != "" {
		out.Main = linked(&info.Main)
		if info.Main.Version == "(devel)" || info.Main.Version == "" {
			out.Main.Version, out.Main.Devel = b.DevelVersion, true
		}
	}
	for _, d := range info.Deps {
		out.Deps = append(out.Deps, linked(d))
	}
	if strings.HasPrefix(out.GoVersion, "go") {
		// The standard library is linked like any module, and is where many Go security fixes land.
		out.Deps = append(out.Deps, goModule{Path: "stdlib", Version: out.GoVersion, Stdlib: true})
	}
	return out, nil
}

// linked applies a replace directive: the replacement is what the binary contains.
func linked(m *debug.Module) goModule {
	r := m.Replace
	switch {
	case r == nil:
		return goModule{Path: m.Path, Version: m.Version, Sum: m.Sum}
	case r.Version == "" || r.Version == "(devel)":
		// A directory replacement: the toolchain records the directory as the path.
		return goModule{Path: m.Path, Dir: r.Path, Replaces: modVersion(m.Path, m.Version)}
	default:
		return goModule{Path: r.Path, Version: r.Version, Sum: r.Sum, Replaces: modVersion(m.Path, m.Version)}
	}
}

func modVersion(path, version string) string {
	if version == "" {
		return path
	}
	return path + "@" + version
}
