package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// idPart turns any name into the characters an SPDXID may hold (letters, digits, '.', '-'), so that
// IDs read like the names they stand for. It is lossy; assignIDs resolves the rare collisions.
func idPart(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		ok := r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.')
		if ok {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if out == "" {
		return "x"
	}
	return out
}

// keyHash is a short stable digest of a node's key, appended to an SPDXID that would otherwise
// collide with another one.
func keyHash(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:4])
}

// purlEscape percent-encodes one purl component. The purl specification keeps the unreserved
// characters and ':' as they are and encodes everything else; '+' in particular must be encoded,
// since a decoder may read a bare '+' as a space, and Debian versions are full of them.
func purlEscape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '-', c == '_', c == '~', c == ':':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// goPurl is pkg:golang/<module path>@<version>; each path segment is escaped on its own so that the
// slashes stay separators. The version is left out when it is unknown.
func goPurl(path, version string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = purlEscape(s)
	}
	p := "pkg:golang/" + strings.Join(segs, "/")
	if version != "" {
		p += "@" + purlEscape(version)
	}
	return p
}

// debPurl is pkg:deb/debian/<name>@<version>?arch=<arch>.
func debPurl(name, version, arch string) string {
	return "pkg:deb/debian/" + purlEscape(name) + "@" + purlEscape(version) + "?arch=" + purlEscape(arch)
}
