package sbom

import "strings"

// spdxIDs are the SPDX License List identifiers that Debian copyright files commonly name, in their
// canonical spelling; DEP-5 short names often match them but for case ("BSD-3-clause").
const spdxIDs = `0BSD AFL-2.1 AFL-3.0 AGPL-3.0-only AGPL-3.0-or-later Apache-1.0 Apache-1.1 Apache-2.0
APSL-2.0 Artistic-1.0 Artistic-1.0-Perl Artistic-2.0 Beerware BSD-1-Clause BSD-2-Clause
BSD-2-Clause-Patent BSD-3-Clause BSD-3-Clause-Clear BSD-4-Clause BSD-Source-Code BSL-1.0 bzip2-1.0.6
CC-BY-1.0 CC-BY-2.0 CC-BY-2.5 CC-BY-3.0 CC-BY-4.0 CC-BY-SA-1.0 CC-BY-SA-2.0 CC-BY-SA-2.5 CC-BY-SA-3.0
CC-BY-SA-4.0 CC0-1.0 CDDL-1.0 CDDL-1.1 CECILL-2.0 CECILL-2.1 CECILL-B CECILL-C CPL-1.0 curl ECL-2.0
EFL-1.0 EFL-2.0 EPL-1.0 EPL-2.0 EUPL-1.1 EUPL-1.2 FSFAP FSFUL FSFULLR FTL GFDL-1.1-only GFDL-1.1-or-later
GFDL-1.2-only GFDL-1.2-or-later GFDL-1.3-only GFDL-1.3-or-later GPL-1.0-only GPL-1.0-or-later
GPL-2.0-only GPL-2.0-or-later GPL-3.0-only GPL-3.0-or-later HPND IJG Imlib2 Info-ZIP ISC
LGPL-2.0-only LGPL-2.0-or-later LGPL-2.1-only LGPL-2.1-or-later LGPL-3.0-only LGPL-3.0-or-later
Libpng libpng-2.0 libtiff LPPL-1.0 LPPL-1.3c MirOS MIT MIT-0 MPL-1.0 MPL-1.1 MPL-2.0 MS-PL NCSA OFL-1.0
OFL-1.1 OLDAP-2.8 OpenSSL PHP-3.01 PostgreSQL PSF-2.0 Python-2.0 QPL-1.0 Ruby SGI-B-2.0 Sleepycat SMLNJ TCL
Unicode-DFS-2015 Unicode-DFS-2016 Unlicense UPL-1.0 Vim W3C WTFPL X11 XFree86-1.1 Zlib
ZPL-1.1
zlib-acknowledgement ZPL-2.0 ZPL-2.1`

// spdxLicense maps one DEP-5 licence short name to an SPDX identifier or expression; a name with no
// SPDX equivalent becomes a LicenseRef.
func spdxLicense(name string) string {
	lower := strings.ToLower(name)
	// Debian names whose SPDX spelling differs in more than case.
	switch lower {
	case "expat":
		return "MIT"
	case "public-domain":
		return "LicenseRef-public-domain"
	case "perl":
		// The format defines Perl as "GPL-1+ or Artistic-1".
		return "GPL-1.0-or-later OR Artistic-1.0-Perl"
	case "artistic", "artistic-1", "artistic-1.0":
		// /usr/share/common-licenses/Artistic is the Perl variant of Artistic 1.0.
		return "Artistic-1.0-Perl"
	case "cc0":
		return "CC0-1.0"
	case "mpl":
		// The lowest MPL version the format knows.
		return "MPL-1.1"
	case "sil-ofl-1.1":
		return "OFL-1.1"
	case "python":
		return "Python-2.0"
	case "apache-2-llvm-exceptions":
		return "Apache-2.0 WITH LLVM-exception"
	}
	if id, ok := gnuLicense(lower); ok {
		return id
	}
	base, plus := strings.CutSuffix(name, "+")
	if rest, ok := strings.CutPrefix(strings.ToLower(base), "zope-"); ok {
		base = "ZPL-" + rest
	}
	id, ok := knownID(base)
	if !ok && !strings.ContainsAny(base, "0123456789") {
		// A family name without a version means the lowest one ("Apache" is Apache 1.0).
		id, ok = knownID(base + "-1.0")
	}
	switch {
	case !ok:
		return licenseRef(name)
	case plus:
		return id + "+"
	}
	return id
}

// knownID finds name among spdxIDs, ignoring case and trailing ".0"s, which the format says do not
// change a version ("Apache-2" is Apache-2.0).
func knownID(name string) (string, bool) {
	base := name
	for strings.HasSuffix(base, ".0") {
		base = strings.TrimSuffix(base, ".0")
	}
	for _, id := range strings.Fields(spdxIDs) {
		if strings.EqualFold(id, name) || strings.EqualFold(id, base) || strings.EqualFold(id, base+".0") {
			return id, true
		}
	}
	return "", false
}

// gnuLicense maps the GNU family (GPL-2, GPL-2+, LGPL-2.1+, AGPL-3, GFDL-1.3, GFDL-NIV-1.2+) to SPDX's
// -only/-or-later identifiers. As the format says, a name without a version means the family's lowest
// version: "GPL" is GPL-1. lower is lower case.
func gnuLicense(lower string) (string, bool) {
	base, plus := strings.CutSuffix(lower, "+")
	families := []struct{ prefix, spdx, suffix, versions string }{
		{"gfdl-niv", "GFDL", "-no-invariants", "1.1 1.2 1.3"},
		{"gfdl", "GFDL", "", "1.1 1.2 1.3"},
		{"lgpl", "LGPL", "", "2.0 2.1 3.0"},
		{"agpl", "AGPL", "", "1.0 3.0"},
		{"gpl", "GPL", "", "1.0 2.0 3.0"},
	}
	for _, f := range families {
		rest, ok := strings.CutPrefix(base, f.prefix)
		if !ok {
			continue
		}
		var version string
		switch {
		case rest == "":
			version = strings.Fields(f.versions)[0]
		case strings.HasPrefix(rest, "-"):
			version = rest[1:]
			for strings.HasSuffix(version, ".0") {
				version = strings.TrimSuffix(version, ".0")
			}
			if !strings.Contains(version, ".") {
				version += ".0"
			}
		default:
			return "", false
		}
		if !containsField(f.versions, version) {
			return "", false
		}
		if plus {
			return f.spdx + "-" + version + f.suffix + "-or-later", true
		}
		return f.spdx + "-" + version + f.suffix + "-only", true
	}
	return "", false
}

func containsField(list, s string) bool {
	for _, f := range strings.Fields(list) {
		if f == s {
			return true
		}
	}
	return false
}

// spdxException maps the words of a DEP-5 "with <words> exception" clause to an SPDX exception
// identifier for licence id, or "" when SPDX lists none (OpenSSL exceptions, for one).
func spdxException(id, words string) string {
	gpl3 := strings.HasPrefix(id, "GPL-3") || strings.HasPrefix(id, "LGPL-3") || strings.HasPrefix(id, "AGPL-3")
	switch strings.ToLower(words) {
	case "autoconf", "autoconf-data":
		if gpl3 {
			return "Autoconf-exception-3.0"
		}
		return "Autoconf-exception-2.0"
	case "bison":
		return "Bison-exception-2.2"
	case "classpath":
		return "Classpath-exception-2.0"
	case "font":
		return "Font-exception-2.0"
	case "gcc", "gcc-3.1", "gcc runtime library", "gcc runtime":
		if gpl3 {
			return "GCC-exception-3.1"
		}
		return "GCC-exception-2.0"
	case "libtool":
		return "Libtool-exception"
	case "linux-syscall-note", "linux syscall", "syscall":
		return "Linux-syscall-note"
	case "llvm":
		return "LLVM-exception"
	case "ocaml linking", "ocaml":
		return "OCaml-LGPL-linking-exception"
	}
	return ""
}
