package sbom

import (
	"bufio"
	"bytes"
	"slices"
	"strings"
)

// DebianLicense reads a package's debian/copyright and returns the licence it declares as an SPDX
// license expression, e.g. "GPL-2.0-or-later OR Artistic-1.0-Perl". In a machine-readable (DEP-5)
// file that is the licence of its "Files: *" paragraph, else the header's, else all the licences of
// its Files paragraphs joined with AND. A free-form file gives one only in the narrow case
// freeFormLicense describes, and "NOASSERTION" otherwise, because copyright prose cannot in general
// be turned into an expression without guessing. Debian short names without an SPDX equivalent
// become LicenseRef-<name>.
func DebianLicense(copyright []byte) string {
	paras := deb822(copyright)
	if len(paras) == 0 || !isDEP5Header(paras[0]) {
		return freeFormLicense(copyright)
	}
	for _, p := range paras[1:] {
		if files, ok := p["files"]; ok && coversAll(files) {
			if lic := licenseExpression(p["license"]); lic != "" {
				return lic
			}
		}
	}
	// A file whose paragraphs all name specific paths may still state the whole work's licence in
	// its header.
	if lic := licenseExpression(paras[0]["license"]); lic != "" {
		return lic
	}
	return allFilesLicenses(paras[1:])
}

// allFilesLicenses joins the licences of the Files paragraphs with AND: without a paragraph for
// "*", each file the package declares anything about is under one of them, so the package as a whole
// is under all of them (ca-certificates: its scripts GPL-2+, the certificates MPL-2.0). A paragraph
// without a licence makes the whole unknown.
func allFilesLicenses(paras []paragraph) string {
	var terms []string
	for _, p := range paras {
		if _, ok := p["files"]; !ok {
			continue // a stand-alone License paragraph: the text of a licence named elsewhere
		}
		lic := licenseExpression(p["license"])
		if lic == "" {
			return noAssertion
		}
		if strings.Contains(lic, " OR ") || strings.Contains(lic, " AND ") {
			lic = "(" + lic + ")"
		}
		if !slices.Contains(terms, lic) {
			terms = append(terms, lic)
		}
	}
	if len(terms) == 0 {
		return noAssertion
	}
	return strings.Join(terms, " AND ")
}

// paragraph maps lower-cased field names to values; continuation lines are kept, joined by "\n".
type paragraph map[string]string

// deb822 splits control-file syntax into paragraphs. It is lenient: lines it cannot read are
// skipped, since a malformed copyright file should cost a licence, not the build.
func deb822(data []byte) []paragraph {
	var (
		out  []paragraph
		cur  paragraph
		last string
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		switch {
		case line == "":
			if cur != nil {
				out = append(out, cur)
				cur, last = nil, ""
			}
		case strings.HasPrefix(line, "#"):
			// deb822 comment
		case line[0] == ' ' || line[0] == '\t':
			if cur != nil && last != "" {
				cur[last] += "\n" + strings.TrimSpace(line)
			}
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok || strings.ContainsAny(name, " \t") {
				last = ""
				continue
			}
			if cur == nil {
				cur = paragraph{}
			}
			last = strings.ToLower(name)
			cur[last] = strings.TrimSpace(value)
		}
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out
}

// isDEP5Header recognises the header paragraph of a machine-readable copyright file, including the
// drafts before 1.0 that called the field Format-Specification.
func isDEP5Header(p paragraph) bool {
	_, ok := p["format"]
	_, draft := p["format-specification"]
	return ok || draft
}

// coversAll reports whether a Files field's whitespace-separated patterns include the bare "*".
func coversAll(files string) bool {
	for _, f := range strings.Fields(files) {
		if f == "*" {
			return true
		}
	}
	return false
}

// licenseExpression translates the first line of a License field (its synopsis; the lines after it
// are licence text) into an SPDX expression, or "" when there is none.
func licenseExpression(field string) string {
	synopsis, _, _ := strings.Cut(field, "\n")
	synopsis = strings.TrimSpace(synopsis)
	if synopsis == "" {
		return ""
	}
	expr, ok := translateSynopsis(synopsis)
	if !ok {
		return licenseRef(synopsis)
	}
	return expr
}
