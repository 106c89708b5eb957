package sbom

import (
	"fmt"
	"path"
	"strings"
)

// addDebian adds one package per .deb, each contained in the image.
func addDebian(g *graph, image, mirror string, debs []DebianPackage) error {
	for _, d := range debs {
		p, err := debPackage(mirror, d)
		if err != nil {
			return err
		}
		key := "deb:" + d.Name
		if err := g.add(key, "Deb", d.Name, p); err != nil {
			return fmt.Errorf("debian package %s: %w", d.Name, err)
		}
		g.relate(image, relContains, key)
	}
	return nil
}

func debPackage(mirror string, d DebianPackage) (Package, error) {
	switch {
	case d.Name == "":
		return Package{}, fmt.Errorf("debian package with version %q has no name", d.Version)
	case d.Version == "":
		return Package{}, fmt.Errorf("debian package %s has no version", d.Name)
	case !isSHA256(d.SHA256):
		return Package{}, fmt.Errorf("debian package %s: sha256 %q is not 64 lower-case hex digits", d.Name, d.SHA256)
	}
	arch, err := debArch(d.Filename)
	if err != nil {
		return Package{}, fmt.Errorf("debian package %s: %w", d.Name, err)
	}
	license := noAssertion
	if d.License != "" {
		if err := checkExpression(d.License); err != nil {
			return Package{}, fmt.Errorf("debian package %s: license %q: %w", d.Name, d.License, err)
		}
		license = d.License
	}
	p := Package{
		Name:             d.Name,
		VersionInfo:      d.Version,
		PackageFileName:  path.Base(d.Filename),
		Supplier:         "Organization: Debian",
		DownloadLocation: noAssertion,
		Checksums:        []Checksum{{Algorithm: "SHA256", Value: d.SHA256}},
		LicenseConcluded: noAssertion,
		LicenseDeclared:  license,
		CopyrightText:    noAssertion,
		ExternalRefs:     []ExternalRef{{Category: categoryPackageManager, Type: "purl", Locator: debPurl(d.Name, d.Version, arch)}},
	}
	if d.Mirror != "" {
		mirror = d.Mirror
	}
	if mirror != "" {
		p.DownloadLocation = strings.TrimRight(mirror, "/") + "/" + strings.TrimLeft(d.Filename, "/")
	}
	if d.Source != "" && d.Source != d.Name {
		p.SourceInfo = "built package from: " + d.Source
	}
	return p, nil
}

// debArch reads the architecture from a pool file name, <name>_<version>_<arch>.deb, so that
// Architecture: all packages are not passed off as amd64.
func debArch(filename string) (string, error) {
	base, ok := strings.CutSuffix(path.Base(filename), ".deb")
	i := strings.LastIndexByte(base, '_')
	if !ok || i < 0 || i == len(base)-1 {
		return "", fmt.Errorf("file name %q is not <name>_<version>_<arch>.deb", filename)
	}
	return base[i+1:], nil
}

// addKernel adds the kernel, contained both in the image (in its UKI) and in the Debian package it
// was taken from, whose licence it shares.
func addKernel(g *graph, image string, k Kernel, debs []DebianPackage) error {
	if k.Release == "" {
		return fmt.Errorf("kernel from %q: release is empty", k.Package)
	}
	license := ""
	found := false
	for _, d := range debs {
		if d.Name == k.Package {
			license, found = d.License, true
		}
	}
	if !found {
		return fmt.Errorf("kernel %s: its package %q is not among the Debian packages", k.Release, k.Package)
	}
	if license == "" {
		license = noAssertion
	}
	p := Package{
		Name:             "linux",
		VersionInfo:      k.Release,
		DownloadLocation: noAssertion,
		LicenseConcluded: noAssertion,
		LicenseDeclared:  license,
		CopyrightText:    noAssertion,
		Comment:          "Linux kernel " + k.Release + " from the Debian package " + k.Package + ", booted from the image's UKI",
		Purpose:          purposeOS,
	}
	if err := g.add("kernel", "Kernel", k.Release, p); err != nil {
		return fmt.Errorf("kernel %s: %w", k.Release, err)
	}
	g.relate(image, relContains, "kernel")
	g.relate("deb:"+k.Package, relContains, "kernel")
	return nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
