package fat

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

const (
	maxLongName  = 255 // UTF-16 code units in a VFAT long name
	lfnChars     = 13  // UTF-16 code units carried by one long-name entry
	maxNameTails = 999999
)

// shortName is a directory entry's 8.3 name: 8 bytes of base and 3 of
// extension, upper case, padded with spaces.
type shortName [11]byte

func (s shortName) String() string {
	base := strings.TrimRight(string(s[:8]), " ")
	ext := strings.TrimRight(string(s[8:]), " ")
	if ext == "" {
		return base
	}
	return base + "." + ext
}

// checksum is the value every long-name entry carries so drivers can tell
// whether the short entry after it still belongs to it.
func (s shortName) checksum() byte {
	var sum byte
	for _, c := range s {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	return sum
}

// validName rejects names that a FAT driver cannot store or that Windows and
// UEFI firmware refuse to open.
func validName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty path component")
	case name == "." || name == "..":
		return fmt.Errorf("path component %q is not allowed", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("name %q is not valid UTF-8", name)
	case strings.HasSuffix(name, ".") || strings.HasSuffix(name, " "):
		// Windows strips these silently, so the file would be unreachable by its name.
		return fmt.Errorf("name %q ends with a dot or space", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7F || strings.ContainsRune(`"*/:<>?\|`, r) {
			return fmt.Errorf("name %q contains %q, which FAT does not allow", name, r)
		}
	}
	if n := len(utf16.Encode([]rune(name))); n > maxLongName {
		return fmt.Errorf("name %q is %d UTF-16 units long; FAT allows %d", name, n, maxLongName)
	}
	return nil
}

// validShortChar reports whether c may appear in an 8.3 name as stored.
func validShortChar(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'()-@^_`{}~", c) >= 0
}

// exactShortName returns the 8.3 name that stands for name without losing
// anything but letter case, if there is one.
func exactShortName(name string) (shortName, bool) {
	upper := strings.ToUpper(name)
	if len(upper) != len(name) { // non-ASCII case mapping changed the bytes
		return shortName{}, false
	}
	base, ext, hasDot := strings.Cut(upper, ".")
	if len(base) < 1 || len(base) > 8 || len(ext) > 3 || (hasDot && ext == "") || strings.Contains(ext, ".") {
		return shortName{}, false
	}
	var s shortName
	for i := range s {
		s[i] = ' '
	}
	for i := 0; i < len(base); i++ {
		if !validShortChar(base[i]) {
			return shortName{}, false
		}
		s[i] = base[i]
	}
	for i := 0; i < len(ext); i++ {
		if !validShortChar(ext[i]) {
			return shortName{}, false
		}
		s[8+i] = ext[i]
	}
	return s, true
}

// shortBasis derives the base and extension a generated 8.3 name starts from:
// upper case, leading dots and all spaces dropped, the extension taken after
// the last dot, characters 8.3 cannot hold replaced by '_'.
func shortBasis(name string) (base, ext string) {
	clean := func(s string, max int) string {
		var b strings.Builder
		for _, r := range strings.ToUpper(s) {
			if b.Len() == max {
				break
			}
			switch {
			case r == ' ' || r == '.':
				continue
			case r < utf8.RuneSelf && validShortChar(byte(r)):
				b.WriteRune(r)
			default:
				b.WriteByte('_')
			}
		}
		return b.String()
	}
	trimmed := strings.TrimLeft(name, ".")
	if i := strings.LastIndexByte(trimmed, '.'); i >= 0 {
		base, ext = clean(trimmed[:i], 8), clean(trimmed[i+1:], 3)
	} else {
		base = clean(trimmed, 8)
	}
	if base == "" {
		base = "_"
	}
	return base, ext
}

// tailedShortName returns basis~n, shortening the base so the tail fits in 8.
func tailedShortName(base, ext string, n int) shortName {
	tail := "~" + strconv.Itoa(n)
	if len(base)+len(tail) > 8 {
		base = base[:8-len(tail)]
	}
	var s shortName
	for i := range s {
		s[i] = ' '
	}
	copy(s[:8], base+tail)
	copy(s[8:], ext)
	return s
}

// assignShortNames gives every child of a directory a unique 8.3 name.
// Names that already are 8.3 (ignoring case) keep that form; the rest get a
// numeric tail. Exact names are placed first so a generated name can never
// take one that a later child needs as is.
func assignShortNames(children []*node) error {
	used := make(map[shortName]bool, len(children))
	var rest []*node
	for _, c := range children {
		s, ok := exactShortName(c.name)
		if !ok || used[s] {
			rest = append(rest, c)
			continue
		}
		used[s] = true
		c.short = s
		// A long name is needed whenever reading back the 8.3 form alone
		// would not give the name as written (here: lower-case letters).
		c.longName = s.String() != c.name
	}
	for _, c := range rest {
		base, ext := shortBasis(c.name)
		found := false
		for n := 1; n <= maxNameTails; n++ {
			s := tailedShortName(base, ext, n)
			if !used[s] {
				used[s] = true
				c.short, c.longName, found = s, true, true
				break
			}
		}
		if !found {
			return fmt.Errorf("no free 8.3 name for %q", c.name)
		}
	}
	return nil
}

func utf16Units(s string) []uint16 { return utf16.Encode([]rune(s)) }

// longNameEntries returns the number of 32-byte long-name entries name needs.
func longNameEntries(name string) int {
	n := len(utf16Units(name))
	return (n + lfnChars - 1) / lfnChars
}
