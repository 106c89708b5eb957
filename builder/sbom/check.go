package sbom

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Check reports the first way d breaks the SPDX 2.3 rules a consumer relies on: required fields,
// identifier syntax and uniqueness, relationships and licence references that resolve. Build runs it
// on every document; image tests can run it on a document read back from disk.
func (d *Document) Check() error {
	switch {
	case d.SPDXVersion != spdxVersion:
		return fmt.Errorf("spdxVersion %q, want %q", d.SPDXVersion, spdxVersion)
	case d.DataLicense != dataLicense:
		return fmt.Errorf("dataLicense %q, want %q", d.DataLicense, dataLicense)
	case d.SPDXID != documentID:
		return fmt.Errorf("document SPDXID %q, want %q", d.SPDXID, documentID)
	case d.Name == "":
		return errors.New("document has no name")
	case len(d.CreationInfo.Creators) == 0:
		return errors.New("creationInfo has no creators")
	}
	if u, err := url.Parse(d.DocumentNamespace); err != nil || !u.IsAbs() || strings.Contains(d.DocumentNamespace, "#") {
		return fmt.Errorf("documentNamespace %q is not an absolute URI without '#'", d.DocumentNamespace)
	}
	if _, err := time.Parse("2006-01-02T15:04:05Z", d.CreationInfo.Created); err != nil {
		return fmt.Errorf("creationInfo.created %q is not YYYY-MM-DDThh:mm:ssZ", d.CreationInfo.Created)
	}
	for _, c := range d.CreationInfo.Creators {
		if !strings.HasPrefix(c, "Tool: ") && !strings.HasPrefix(c, "Person: ") && !strings.HasPrefix(c, "Organization: ") {
			return fmt.Errorf("creator %q is not Tool:, Person: or Organization:", c)
		}
	}

	declared := map[string]bool{}
	for _, l := range d.ExtractedLicenses {
		if !strings.HasPrefix(l.LicenseID, "LicenseRef-") || !isLicenseID(l.LicenseID) || declared[l.LicenseID] || l.ExtractedText == "" {
			return fmt.Errorf("extracted licence %q: needs a unique LicenseRef- id and a text", l.LicenseID)
		}
		declared[l.LicenseID] = true
	}

	ids := map[string]bool{documentID: true}
	for _, p := range d.Packages {
		if err := p.check(declared); err != nil {
			return fmt.Errorf("package %s (%s): %w", p.SPDXID, p.Name, err)
		}
		if ids[p.SPDXID] {
			return fmt.Errorf("SPDXID %s is used twice", p.SPDXID)
		}
		ids[p.SPDXID] = true
	}
	for _, id := range d.DocumentDescribes {
		if !ids[id] || id == documentID {
			return fmt.Errorf("documentDescribes names %q, which is no package here", id)
		}
	}
	for _, r := range d.Relationships {
		if r.Type == "" || !isUpperSnake(r.Type) {
			return fmt.Errorf("relationship %s -> %s has type %q", r.Element, r.Related, r.Type)
		}
		for _, id := range []string{r.Element, r.Related} {
			if !ids[id] {
				return fmt.Errorf("relationship %s %s %s names %q, which is not in the document", r.Element, r.Type, r.Related, id)
			}
		}
	}
	return nil
}

func (p Package) check(declared map[string]bool) error {
	if !validSPDXID(p.SPDXID) {
		return errors.New("SPDXID does not match SPDXRef-[A-Za-z0-9.-]+")
	}
	if p.Name == "" || p.DownloadLocation == "" {
		return errors.New("name and downloadLocation are required")
	}
	for _, c := range p.Checksums {
		if c.Algorithm == "" || c.Value == "" || strings.Trim(c.Value, "0123456789abcdef") != "" {
			return fmt.Errorf("checksum %s %q is not lower-case hex", c.Algorithm, c.Value)
		}
	}
	for _, r := range p.ExternalRefs {
		switch r.Category {
		case categoryPackageManager, categoryOther, "SECURITY", "PERSISTENT-ID":
		default:
			return fmt.Errorf("externalRef category %q", r.Category)
		}
		if r.Type == "" || r.Locator == "" || strings.ContainsAny(r.Locator, " \t\n") {
			return fmt.Errorf("externalRef %s %q needs a type and a locator without spaces", r.Type, r.Locator)
		}
	}
	for _, expr := range []string{p.LicenseConcluded, p.LicenseDeclared} {
		if expr == "" || expr == noAssertion || expr == "NONE" {
			continue
		}
		if err := checkExpression(expr); err != nil {
			return fmt.Errorf("license %q: %w", expr, err)
		}
		for _, t := range licenseTokens(expr) {
			if strings.HasPrefix(t, "LicenseRef-") && !declared[t] {
				return fmt.Errorf("license %q: %s is not declared in hasExtractedLicensingInfos", expr, t)
			}
		}
	}
	return nil
}

// validSPDXID matches SPDXRef-[A-Za-z0-9.-]+.
func validSPDXID(id string) bool {
	rest, ok := strings.CutPrefix(id, "SPDXRef-")
	return ok && rest != "" && strings.TrimSuffix(rest, "+") == rest && isLicenseID(rest)
}

func isUpperSnake(s string) bool {
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c == '_') {
			return false
		}
	}
	return true
}
