package disk

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// UUIDs are the disk GUID and each partition's unique GUID (PARTUUID), in
// canonical lower-case form.
type UUIDs struct {
	Disk, ESP, RootA, VerityA, RootB, VerityB, Data string
}

// UUIDsFor derives every UUID of an image from the root hash of its root-a
// file system, so the same input always gives the same disk.
func UUIDsFor(rootHash []byte) (UUIDs, error) {
	root, verity, err := RootUUIDs(rootHash)
	if err != nil {
		return UUIDs{}, err
	}
	return UUIDs{
		Disk:    DeriveUUID("disk", rootHash),
		ESP:     DeriveUUID(NameESP, rootHash),
		RootA:   root,
		VerityA: verity,
		RootB:   DeriveUUID(NameRootB, rootHash),
		VerityB: DeriveUUID(NameVerityB, rootHash),
		Data:    DeriveUUID(NameData, rootHash),
	}, nil
}

// RootUUIDs returns the PARTUUIDs of a root partition and its verity
// partition: the first and the last 128 bits of the verity root hash, as the
// UAPI Discoverable Partitions Specification asks, so the root hash alone finds
// both partitions.
//
// The bytes are used as they are, with no UUID version or variant bits
// forced: the specification says "the first 128 bit of the root hash";
// systemd-repart copies the hash bytes straight into the UUIDs
// (partition_format_verity_hash), and systemd-veritysetup-generator and
// systemd-dissect copy them back out the same way to find
// /dev/disk/by-partuuid/<uuid>. Forcing v4 bits would change 6 bits of each
// UUID and break that lookup. The string is the hash's hex in order with
// dashes, as blkid and by-partuuid show it; GPT stores the first three fields
// little-endian on disk, which the table writer handles.
func RootUUIDs(rootHash []byte) (root, verity string, err error) {
	if len(rootHash) < 32 {
		return "", "", fmt.Errorf("root hash is %d bytes; need at least 32 for two disjoint 128-bit UUIDs", len(rootHash))
	}
	var first, last [16]byte
	copy(first[:], rootHash[:16])
	copy(last[:], rootHash[len(rootHash)-16:])
	return formatUUID(first), formatUUID(last), nil
}

// DeriveUUID returns a version-4 UUID for the named part of an image
// ("disk", "esp", "root-b", ...): the first 16 bytes of
// sha256("ballast:<name>:" + hex(rootHash)) with the version and variant bits
// set, the way systemd-repart marks the UUIDs it derives from a seed.
func DeriveUUID(name string, rootHash []byte) string {
	sum := sha256.Sum256([]byte("ballast:" + name + ":" + hex.EncodeToString(rootHash)))
	var u [16]byte
	copy(u[:], sum[:16])
	u[6] = u[6]&0x0F | 0x40 // version 4
	u[8] = u[8]&0x3F | 0x80 // RFC 4122 variant
	return formatUUID(u)
}

func formatUUID(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// parseUUID accepts the canonical 8-4-4-4-12 form in either case.
func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("UUID %q is not in 8-4-4-4-12 form", s)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil {
		return u, fmt.Errorf("UUID %q: %w", s, err)
	}
	copy(u[:], b)
	return u, nil
}
