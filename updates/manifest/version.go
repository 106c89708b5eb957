package manifest

import (
	"fmt"
	"strings"

	"github.com/ballast-os/ballast/contract"
)

// Version is an image version as the updater orders them.
//
// A version is a numeric core of dot-separated fields ("1", "2.0", "2.0.1"), optionally followed
// by '-' and a pre-release tag ("2.0.0-rc1"). Versions order by their core fields compared as
// numbers, a missing field counting as 0 ("2.0" and "2.0.0" are the same version); with equal
// cores a pre-release comes before its release (2.0.0-rc1 < 2.0.0), and two pre-release tags
// compare piece by piece: runs of digits as numbers, other runs by byte order, a digit run before
// a letter run, and a tag that is a prefix of another first (rc2 < rc10, beta < rc1, rc < rc1).
// The text also has to be usable in boot entry names (contract.ValidateVersion).
type Version struct {
	raw  string
	core []string // numeric fields, leading zeros kept for String and ignored by Compare
	pre  string   // the pre-release tag, "" for a release
}

// ParseVersion reads a version, naming what is wrong with it.
func ParseVersion(s string) (Version, error) {
	if err := contract.ValidateVersion(s); err != nil {
		return Version{}, err
	}
	core, pre, hasPre := strings.Cut(s, "-")
	if hasPre && pre == "" {
		return Version{}, fmt.Errorf("version %q: empty pre-release tag after '-'", s)
	}
	fields := strings.Split(core, ".")
	for _, f := range fields {
		if f == "" || strings.Trim(f, "0123456789") != "" {
			return Version{}, fmt.Errorf("version %q: want numeric fields separated by '.' before any '-' (like 2.0.1 or 2.0.1-rc1)", s)
		}
	}
	return Version{raw: s, core: fields, pre: pre}, nil
}

// String is the version as it was written.
func (v Version) String() string { return v.raw }

// PreRelease reports whether the version carries a pre-release tag.
func (v Version) PreRelease() bool { return v.pre != "" }

// Compare returns -1, 0 or 1 as v is older than, the same as or newer than w.
func (v Version) Compare(w Version) int {
	n := max(len(v.core), len(w.core))
	for i := range n {
		a, b := "0", "0"
		if i < len(v.core) {
			a = v.core[i]
		}
		if i < len(w.core) {
			b = w.core[i]
		}
		if c := compareDigits(a, b); c != 0 {
			return c
		}
	}
	switch {
	case v.pre == w.pre:
		return 0
	case v.pre == "":
		return 1
	case w.pre == "":
		return -1
	}
	return comparePre(v.pre, w.pre)
}

// Compare parses and compares two versions: -1, 0 or 1 as a is older than, the same as or newer
// than b.
func Compare(a, b string) (int, error) {
	va, err := ParseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := ParseVersion(b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}

// compareDigits compares two runs of decimal digits as numbers of any length.
func compareDigits(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// comparePre compares pre-release tags run by run (digit runs numerically).
func comparePre(a, b string) int {
	for a != "" && b != "" {
		ra, rb := run(a), run(b)
		da, db := isDigit(ra[0]), isDigit(rb[0])
		var c int
		switch {
		case da && db:
			c = compareDigits(ra, rb)
		case da:
			c = -1
		case db:
			c = 1
		default:
			c = strings.Compare(ra, rb)
		}
		if c != 0 {
			return c
		}
		a, b = a[len(ra):], b[len(rb):]
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	}
	return 1
}

// run is the leading run of s: all digits or all non-digits.
func run(s string) string {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i]
}
