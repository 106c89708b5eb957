package sbom

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// licenseTokens splits an SPDX license expression into identifiers, operators and parentheses.
func licenseTokens(expr string) []string {
	expr = strings.ReplaceAll(expr, "(", " ( ")
	expr = strings.ReplaceAll(expr, ")", " ) ")
	return strings.Fields(expr)
}

// checkExpression rejects a licence string that is not a well-formed SPDX expression, so that a bad
// value from the caller fails the build here rather than in whoever reads the SBOM.
func checkExpression(expr string) error {
	toks := licenseTokens(expr)
	if len(toks) == 0 {
		return errors.New("empty")
	}
	depth := 0
	wantOperand := true
	for i, t := range toks {
		switch {
		case t == "(":
			if !wantOperand {
				return fmt.Errorf("unexpected ( at token %d", i+1)
			}
			depth++
		case t == ")":
			if wantOperand || depth == 0 {
				return fmt.Errorf("unexpected ) at token %d", i+1)
			}
			depth--
		case t == "AND" || t == "OR" || t == "WITH":
			if wantOperand {
				return fmt.Errorf("unexpected %s at token %d", t, i+1)
			}
			wantOperand = true
		default:
			if !wantOperand {
				return fmt.Errorf("missing operator before %q", t)
			}
			if !isLicenseID(t) {
				return fmt.Errorf("%q is not a license identifier", t)
			}
			wantOperand = false
		}
	}
	if wantOperand || depth != 0 {
		return errors.New("incomplete expression")
	}
	return nil
}

// isLicenseID accepts idstrings with an optional "+" (or later), the form of every SPDX licence and
// exception identifier and of LicenseRef-s.
func isLicenseID(t string) bool {
	t = strings.TrimSuffix(t, "+")
	if t == "" {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// extractedLicenses declares every LicenseRef- that the Debian packages' licences use (the kernel's
// is its package's), as SPDX requires. Ballast has no licence texts of its own to put there, so each
// one points at the copyright files it came from.
func extractedLicenses(debs []DebianPackage) []ExtractedLicense {
	users := map[string][]string{}
	for _, d := range debs {
		for _, t := range licenseTokens(d.License) {
			if strings.HasPrefix(t, "LicenseRef-") && !slices.Contains(users[t], d.Name) {
				users[t] = append(users[t], d.Name)
			}
		}
	}
	var out []ExtractedLicense
	for id, names := range users {
		slices.Sort(names)
		name := strings.TrimPrefix(id, "LicenseRef-")
		out = append(out, ExtractedLicense{
			LicenseID: id,
			Name:      name,
			ExtractedText: fmt.Sprintf("A licence named %q in the machine-readable debian/copyright of %s, "+
				"with no SPDX License List identifier; its text is in each package's /usr/share/doc/<package>/copyright.",
				name, strings.Join(names, ", ")),
		})
	}
	slices.SortFunc(out, func(a, b ExtractedLicense) int { return strings.Compare(a.LicenseID, b.LicenseID) })
	return out
}
