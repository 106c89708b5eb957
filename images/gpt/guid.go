package gpt

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// GUID is a GUID in on-disk byte order: the first three fields little-endian (the "mixed-endian"
// layout), the last eight bytes as written.
type GUID [16]byte

// IsZero reports whether g is the all-zero GUID that marks an unused entry.
func (g GUID) IsZero() bool { return g == GUID{} }

// String formats g in the canonical lower-case form the kernel and blkid print for PARTUUIDs.
func (g GUID) String() string {
	b := [16]byte{
		g[3], g[2], g[1], g[0],
		g[5], g[4],
		g[7], g[6],
		g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15],
	}
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// ParseGUID parses the canonical 8-4-4-4-12 form, in either case.
func ParseGUID(s string) (GUID, error) {
	var g GUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, fmt.Errorf("invalid GUID %q: want 8-4-4-4-12 hex digits", s)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil {
		return g, fmt.Errorf("invalid GUID %q: %w", s, err)
	}
	g = GUID{
		b[3], b[2], b[1], b[0],
		b[5], b[4],
		b[7], b[6],
		b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15],
	}
	return g, nil
}
