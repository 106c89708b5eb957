package debian

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a Debian package version, [epoch:]upstream[-revision], ordered the way dpkg orders it.
type Version struct {
	Epoch    uint64
	Upstream string
	Revision string
}

// ParseVersion checks s against Debian policy 5.6.12 and splits it.
func ParseVersion(s string) (Version, error) {
	var v Version
	rest := s
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		e, err := strconv.ParseUint(rest[:i], 10, 32)
		if err != nil {
			return Version{}, fmt.Errorf("version %q: epoch %q is not a number", s, rest[:i])
		}
		v.Epoch, rest = e, rest[i+1:]
	}
	// The revision starts after the last hyphen, so upstream versions may contain hyphens.
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		v.Revision, rest = rest[i+1:], rest[:i]
		if v.Revision == "" {
			return Version{}, fmt.Errorf("version %q: empty revision after '-'", s)
		}
	}
	v.Upstream = rest
	switch {
	case v.Upstream == "":
		return Version{}, fmt.Errorf("version %q: empty upstream version", s)
	case !isDigit(v.Upstream[0]):
		return Version{}, fmt.Errorf("version %q: upstream version must start with a digit", s)
	}
	if c, ok := badVersionChar(v.Upstream, ".+~-:"); ok {
		return Version{}, fmt.Errorf("version %q: character %q not allowed in upstream version", s, c)
	}
	if c, ok := badVersionChar(v.Revision, ".+~"); ok {
		return Version{}, fmt.Errorf("version %q: character %q not allowed in revision", s, c)
	}
	return v, nil
}

func badVersionChar(s, extra string) (rune, bool) {
	for _, c := range s {
		if c < 0x80 && (isDigit(byte(c)) || isLetter(byte(c))) || strings.ContainsRune(extra, c) {
			continue
		}
		return c, true
	}
	return 0, false
}

// String gives the version back in its canonical form.
func (v Version) String() string {
	s := v.Upstream
	if v.Epoch != 0 {
		s = strconv.FormatUint(v.Epoch, 10) + ":" + s
	}
	if v.Revision != "" {
		s += "-" + v.Revision
	}
	return s
}

// Compare returns -1, 0 or 1 as v sorts before, equal to or after w.
func (v Version) Compare(w Version) int {
	switch {
	case v.Epoch < w.Epoch:
		return -1
	case v.Epoch > w.Epoch:
		return 1
	}
	if c := compareFragment(v.Upstream, w.Upstream); c != 0 {
		return c
	}
	return compareFragment(v.Revision, w.Revision)
}

// CompareVersions parses and compares two version strings.
func CompareVersions(a, b string) (int, error) {
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

// compareFragment is dpkg's verrevcmp: alternating runs of non-digits (compared character by
// character with ~ before everything, even the end, and letters before other symbols) and digits
// (compared as numbers, of any length).
func compareFragment(a, b string) int {
	for a != "" || b != "" {
		for (a != "" && !isDigit(a[0])) || (b != "" && !isDigit(b[0])) {
			ac, bc := charOrder(a), charOrder(b)
			if ac != bc {
				return sign(ac - bc)
			}
			a, b = a[1:], b[1:]
		}
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		na, nb := digitRun(a), digitRun(b)
		// Leading zeros are gone, so the longer run is the larger number.
		if na != nb {
			return sign(na - nb)
		}
		if c := strings.Compare(a[:na], b[:nb]); c != 0 {
			return c
		}
		a, b = a[na:], b[nb:]
	}
	return 0
}

// charOrder ranks the first character of s within a non-digit run; a digit or the end ranks 0,
// since either ends the run.
func charOrder(s string) int {
	switch {
	case s == "" || isDigit(s[0]):
		return 0
	case s[0] == '~':
		return -1
	case isLetter(s[0]):
		return int(s[0])
	default:
		return int(s[0]) + 256
	}
}

func digitRun(s string) int {
	n := 0
	for n < len(s) && isDigit(s[n]) {
		n++
	}
	return n
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
