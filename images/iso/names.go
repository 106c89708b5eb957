package iso

import (
	"fmt"
	"strconv"
	"strings"
)

// ISO9660 level 2 limits (ECMA-119 7.5.1, 7.6.3): a file's name and extension together, and a
// directory's identifier.
const (
	maxFileIDChars = 30
	maxDirIDChars  = 31
	maxExtChars    = 8 // our choice: keeps most of the name when a long extension would eat it
	// maxNameBytes is the longest Rock Ridge name Linux reads back whole (NAME_MAX and isofs's
	// own buffer of 254 bytes with the terminating NUL).
	maxNameBytes = 253
)

// isoID is a node's plain ISO9660 identifier, split for sorting.
type isoID struct {
	base, ext string
	dir       bool
}

// String is the identifier as recorded: "BASE.EXT;1" for a file, "BASE" for a directory.
func (id isoID) String() string {
	if id.dir {
		return id.base
	}
	return id.base + "." + id.ext + ";1"
}

// less orders identifiers as ECMA-119 9.3 asks: by name, then by extension, each compared as
// if padded with spaces, which for d-characters (all above the space) is plain byte order.
func (id isoID) less(o isoID) bool {
	if id.base != o.base {
		return id.base < o.base
	}
	return id.ext < o.ext
}

// dChars maps a name to d-characters (A-Z, 0-9, _), upper-casing letters.
func dChars(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// plainID is the ISO9660 identifier a name gets before collisions are resolved.
func plainID(name string, dir bool) isoID {
	if dir {
		return isoID{base: truncate(dChars(name), maxDirIDChars), dir: true}
	}
	base, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		base, ext = name[:i], name[i+1:]
	}
	ext = truncate(dChars(ext), maxExtChars)
	return isoID{base: truncate(dChars(base), maxFileIDChars-len(ext)), ext: ext}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// assignIDs gives the children of one directory distinct identifiers. Children must come in a
// fixed order (by name): the first to claim an identifier keeps it, later ones get a number in
// place of their name's last characters, so the result depends on the names only.
func assignIDs(children []*node) error {
	taken := make(map[string]bool, len(children))
	for _, c := range children {
		id := plainID(c.name, c.dir)
		limit := maxDirIDChars
		if !c.dir {
			limit = maxFileIDChars - len(id.ext)
		}
		for n := 1; taken[id.String()]; n++ {
			suffix := strconv.Itoa(n)
			if len(suffix) > limit {
				return fmt.Errorf("no free ISO9660 identifier for %q", c.name)
			}
			base := plainID(c.name, c.dir).base
			id.base = truncate(base, limit-len(suffix)) + suffix
		}
		taken[id.String()] = true
		c.id = id
	}
	return nil
}
