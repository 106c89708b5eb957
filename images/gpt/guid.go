package gpt

import (
	"fmt"

	"github.com/ballast-os/ballast/contract"
)

// GUID is a GUID in on-disk byte order: the first three fields little-endian (the "mixed-endian"
// layout), the last eight bytes as written.
type GUID [16]byte

// IsZero reports whether g is the all-zero GUID that marks an unused entry.
func (g GUID) IsZero() bool { return g == GUID{} }

// UUID returns g in textual byte order.
func (g GUID) UUID() contract.UUID { return contract.UUID(swap(g)) }

// FromUUID returns the on-disk form of a UUID.
func FromUUID(u contract.UUID) GUID { return GUID(swap(u)) }

// String formats g in the canonical lower-case form the kernel and blkid print for PARTUUIDs.
func (g GUID) String() string { return g.UUID().String() }

// ParseGUID parses the canonical 8-4-4-4-12 form, in either case.
func ParseGUID(s string) (GUID, error) {
	u, err := contract.ParseUUID(s)
	if err != nil {
		return GUID{}, fmt.Errorf("invalid GUID: %w", err)
	}
	return FromUUID(u), nil
}

// swap converts between the textual and the on-disk order; it is its own inverse.
func swap(b [16]byte) [16]byte {
	return [16]byte{
		b[3], b[2], b[1], b[0],
		b[5], b[4],
		b[7], b[6],
		b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15],
	}
}
