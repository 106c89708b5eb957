package sbom

import (
	"fmt"
	"slices"
	"strings"
)

// Go modules are joined to binaries with STATIC_LINK, not DEPENDS_ON or CONTAINS: the Go linker copies
// the modules' code into the executable, which is exactly SPDX's "SPDXRef-A statically links to
// SPDXRef-B", and unlike DEPENDS_ON it tells a reader that replacing the module on disk changes
// nothing: only a rebuild does.

// addGoBinaries adds one package per binary and one per distinct linked module.
func addGoBinaries(g *graph, image string, bins []goBinary) error {
	mods := map[string]*goModEntry{}
	for _, b := range bins {
		key := "gobin:" + b.Path
		if err := g.add(key, "GoBinary", b.Path, binaryPackage(b)); err != nil {
			return fmt.Errorf("go binary %s: %w", b.Path, err)
		}
		g.relate(image, relContains, key)
		linkedMods := b.Deps
		if b.Main.Path != "" {
			linkedMods = append([]goModule{b.Main}, b.Deps...)
		}
		for _, m := range linkedMods {
			e, ok := mods[m.key()]
			if !ok {
				e = &goModEntry{mod: m, seenIn: b.Path}
				mods[m.key()] = e
			}
			// A component built from its own module source is the main module of its binaries,
			// which carry no sum for it; the builder fetched that source through the module
			// proxy, so the sum another binary records for the same version is the one.
			if e.mod.Sum == "" {
				e.mod.Sum = m.Sum
			}
			if m.Sum != e.mod.Sum && m.Sum != "" {
				return fmt.Errorf("go module %s: %s links it with sum %q, %s with %q", modVersion(m.Path, m.Version), e.seenIn, e.mod.Sum, b.Path, m.Sum)
			}
			if m.Replaces != "" && !slices.Contains(e.replaces, m.Replaces) {
				e.replaces = append(e.replaces, m.Replaces)
			}
			e.devel = e.devel || m.Devel
			g.relate(key, relStaticLink, m.key())
		}
	}
	for key, e := range mods {
		if err := g.add(key, "GoModule", modVersion(e.mod.Path, e.mod.Version), modulePackage(e)); err != nil {
			return fmt.Errorf("go module %s: %w", modVersion(e.mod.Path, e.mod.Version), err)
		}
	}
	return nil
}

// goModEntry merges what several binaries say about one module.
type goModEntry struct {
	mod      goModule
	seenIn   string
	replaces []string
	devel    bool
}

func binaryPackage(b goBinary) Package {
	p := Package{
		Name:             b.Path,
		VersionInfo:      b.Main.Version,
		PackageFileName:  b.Path,
		DownloadLocation: "NONE", // built for this image; it exists nowhere else
		Checksums:        []Checksum{{Algorithm: "SHA256", Value: b.SHA256}},
		LicenseConcluded: noAssertion,
		LicenseDeclared:  noAssertion,
		CopyrightText:    noAssertion,
		Comment:          binaryComment(b),
		Purpose:          purposeApp,
	}
	if purl := binaryPurl(b); purl != "" {
		p.ExternalRefs = []ExternalRef{{Category: categoryPackageManager, Type: "purl", Locator: purl}}
	}
	return p
}

// binaryPurl names the main package as a purl subpath of its module, so a scanner can tell which
// command it is; "" when the package lies outside any main module.
func binaryPurl(b goBinary) string {
	if b.Main.Path == "" {
		return ""
	}
	base := goPurl(b.Main.Path, b.Main.Version)
	if b.Package == b.Main.Path {
		return base
	}
	sub, ok := strings.CutPrefix(b.Package, b.Main.Path+"/")
	if !ok {
		return ""
	}
	segs := strings.Split(sub, "/")
	for i, s := range segs {
		segs[i] = purlEscape(s)
	}
	return base + "#" + strings.Join(segs, "/")
}

func binaryComment(b goBinary) string {
	var s strings.Builder
	fmt.Fprintf(&s, "Go binary built with %s from package %s", b.GoVersion, b.Package)
	switch {
	case b.Main.Path == "":
		s.WriteString(", no main module")
	case b.Main.Devel:
		fmt.Fprintf(&s, ", main module %s (devel)", b.Main.Path)
	default:
		fmt.Fprintf(&s, ", main module %s %s", b.Main.Path, b.Main.Version)
	}
	if len(b.Settings) > 0 {
		s.WriteString("; build settings:")
		for _, st := range b.Settings {
			fmt.Fprintf(&s, " %s=%s", st.Key, st.Value)
		}
	}
	return s.String()
}

func modulePackage(e *goModEntry) Package {
	m := e.mod
	p := Package{
		Name:             m.Path,
		VersionInfo:      m.Version,
		DownloadLocation: noAssertion,
		LicenseConcluded: noAssertion,
		LicenseDeclared:  noAssertion,
		CopyrightText:    noAssertion,
		Purpose:          purposeLibrary,
	}
	purlVersion := m.Version
	if m.Stdlib {
		// Vulnerability databases key the standard library as "stdlib" with a bare semantic version.
		purlVersion = strings.TrimPrefix(m.Version, "go")
	}
	p.ExternalRefs = append(p.ExternalRefs, ExternalRef{Category: categoryPackageManager, Type: "purl", Locator: goPurl(m.Path, purlVersion)})
	if m.Sum != "" {
		// The h1: hash is a base64 SHA-256 over the module's file list (its dirhash), not over any
		// file a reader could checksum, so it is not an SPDX checksum; it goes in a reference instead.
		p.ExternalRefs = append(p.ExternalRefs, ExternalRef{Category: categoryOther, Type: "go-module-sum", Locator: m.Sum,
			Comment: "go.sum hash (h1: base64 SHA-256 dirhash of the module zip's contents)"})
	}
	var notes []string
	switch {
	case m.Stdlib:
		notes = append(notes, "Go standard library")
	case e.devel && m.Version != "":
		notes = append(notes, "main module, built from a source tree: Go reports its version as (devel); "+m.Version+" is the builder's")
	case e.devel:
		notes = append(notes, "main module, built from a source tree: Go reports its version as (devel)")
	}
	slices.Sort(e.replaces)
	for _, r := range e.replaces {
		notes = append(notes, "replaces "+r)
	}
	if m.Dir != "" {
		notes = append(notes, "replaced by the local directory "+m.Dir)
	}
	p.Comment = strings.Join(notes, "; ")
	return p
}
