package sbom

import (
	"regexp"
	"strings"
)

// commonLicense finds Debian's pointers to the licence texts every system has, as in "the complete
// text of the GNU General Public License can be found in `/usr/share/common-licenses/GPL-2'".
var commonLicense = regexp.MustCompile(`/usr/share/common-licenses/([A-Za-z0-9][A-Za-z0-9.+_-]*[A-Za-z0-9+])`)

// gnuNames are the full names of the GNU licences as their notices spell them. "GNU General Public
// License" is not part of the others' names, so each can be counted on its own.
var gnuNames = map[string]string{
	"GPL":  "GNU General Public License",
	"LGPL": "GNU Lesser General Public License",
	"AGPL": "GNU Affero General Public License",
	"GFDL": "GNU Free Documentation License",
}

// otherGrants are phrases of licences that a free-form file may quote in full rather than point
// to; any of them means the file licenses something beyond its one pointer.
var otherGrants = []string{
	"GNU Library General Public License",
	"Permission is hereby granted",
	"Permission to use, copy, modify",
	"Redistribution and use in source and binary forms",
	"public domain",
	"Apache License",
	"Mozilla Public License",
	"Artistic License",
}

// freeFormLicense reads the licence of a copyright file that is not machine-readable, in the one
// case where the prose is unambiguous: it points to exactly one versioned text of a GNU licence
// under /usr/share/common-licenses (Debian's own name for the licence), carries that licence's
// notice, whose standard words say whether any later version applies, and names no other licence.
// BusyBox's file is such a case. Everything else, such as glibc's and GCC's files, which license
// their parts differently, is NOASSERTION.
func freeFormLicense(copyright []byte) string {
	text := strings.Join(strings.Fields(string(copyright)), " ")
	var names []string
	for _, m := range commonLicense.FindAllStringSubmatch(text, -1) {
		if !strings.ContainsAny(m[1], "0123456789") {
			// An unversioned pointer (common-licenses/GPL) names whichever version the system
			// links there today, not the one the package was released under.
			return noAssertion
		}
		if !containsField(strings.Join(names, " "), m[1]) {
			names = append(names, m[1])
		}
	}
	if len(names) != 1 {
		return noAssertion
	}
	lower := strings.ToLower(text)
	for _, g := range otherGrants {
		if strings.Contains(lower, strings.ToLower(g)) {
			return noAssertion
		}
	}
	name := strings.TrimSuffix(names[0], "+")
	family := strings.ToUpper(strings.SplitN(name, "-", 2)[0])
	if _, gnu := gnuNames[family]; !gnu {
		return noAssertion
	}
	for f, full := range gnuNames {
		if strings.Contains(text, full) != (f == family) {
			return noAssertion // the notice is about another licence than the text pointed to
		}
	}
	if strings.HasSuffix(names[0], "+") || strings.Contains(lower, "any later version") {
		name += "+"
	}
	lic, ok := gnuLicense(strings.ToLower(name))
	if !ok {
		return noAssertion
	}
	return lic
}
