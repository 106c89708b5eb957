package contract

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// PartitionName names a partition of a Ballast disk; it is also the partition's GPT label.
type PartitionName string

// The partitions of a Ballast disk, in table order.
const (
	PartESP     PartitionName = "esp"
	PartRootA   PartitionName = "root-a"
	PartVerityA PartitionName = "verity-a"
	PartRootB   PartitionName = "root-b"
	PartVerityB PartitionName = "verity-b"
	PartData    PartitionName = "data"
)

// Partitions lists every partition name in table order. The data partition comes last, so the
// initramfs can grow it into whatever space the real disk has.
func Partitions() []PartitionName {
	return []PartitionName{PartESP, PartRootA, PartVerityA, PartRootB, PartVerityB, PartData}
}

// ParsePartitionName accepts only the names in Partitions.
func ParsePartitionName(s string) (PartitionName, error) {
	n := PartitionName(s)
	return n, n.Validate()
}

// Validate fails for a name that is not one of Partitions.
func (n PartitionName) Validate() error {
	for _, p := range Partitions() {
		if n == p {
			return nil
		}
	}
	return fmt.Errorf("unknown partition %q (known: esp, root-a, verity-a, root-b, verity-b, data)", string(n))
}

// Slot is one of the two A/B root partition sets.
type Slot string

// The two slots.
const (
	SlotA Slot = "a"
	SlotB Slot = "b"
)

// Validate fails for anything but "a" and "b".
func (s Slot) Validate() error {
	if s != SlotA && s != SlotB {
		return fmt.Errorf("slot %q is neither a nor b", string(s))
	}
	return nil
}

// Root is the slot's root partition.
func (s Slot) Root() PartitionName {
	if s == SlotB {
		return PartRootB
	}
	return PartRootA
}

// Verity is the slot's verity partition.
func (s Slot) Verity() PartitionName {
	if s == SlotB {
		return PartVerityB
	}
	return PartVerityA
}

// UUID is a UUID in its textual byte order (as printed; GPT stores the first three fields
// little-endian on disk, which the GPT code converts).
type UUID [16]byte

// String is the canonical lower-case 8-4-4-4-12 form, as blkid and /dev/disk/by-partuuid show it.
func (u UUID) String() string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// IsZero reports whether u is all zeros.
func (u UUID) IsZero() bool { return u == UUID{} }

// ParseUUID accepts the canonical 8-4-4-4-12 form in either case.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("UUID %q is not in 8-4-4-4-12 form", s)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		return u, fmt.Errorf("UUID %q holds a non-hex digit", s)
	}
	copy(u[:], b)
	return u, nil
}

// Derive returns stable bytes for one purpose from seed: sha256("ballast:<purpose>:" + seed).
// Everything a build would otherwise draw at random (salts, UUIDs, volume IDs) comes from it, so
// the same inputs always give the same image.
func Derive(purpose, seed string) [32]byte {
	return sha256.Sum256([]byte("ballast:" + purpose + ":" + seed))
}

// DerivedUUID returns a version-4 UUID for one purpose from seed: the first 16 bytes of
// Derive(purpose, seed) with the version and variant bits set, the way systemd-repart marks the
// UUIDs it derives.
func DerivedUUID(purpose, seed string) UUID {
	sum := Derive(purpose, seed)
	var u UUID
	copy(u[:], sum[:16])
	u[6] = u[6]&0x0F | 0x40 // version 4
	u[8] = u[8]&0x3F | 0x80 // RFC 4122 variant
	return u
}

// DiskUUID is the GPT disk GUID of every image of the variant: DerivedUUID("disk", variant).
func DiskUUID(variant string) UUID { return DerivedUUID("disk", variant) }

// SlotUUIDs returns the PARTUUIDs of a slot's root and verity partitions while the slot holds the
// root with this verity root hash: its first and its last 128 bits, copied raw, as the UAPI
// Discoverable Partitions Specification asks and systemd-repart does. The root hash alone then
// finds both partitions, and forcing version bits would break systemd's lookup. The updater gives
// the partitions of the slot it writes these UUIDs, and the slot's UKI names them.
func SlotUUIDs(rootHash []byte) (root, verity UUID, err error) {
	if len(rootHash) != sha256.Size {
		return UUID{}, UUID{}, fmt.Errorf("root hash is %d bytes, want %d", len(rootHash), sha256.Size)
	}
	copy(root[:], rootHash[:16])
	copy(verity[:], rootHash[16:])
	return root, verity, nil
}

// PartitionUUID returns the PARTUUID of partition n on a built image of the variant whose slot A
// holds the root with this verity root hash. root-a and verity-a are SlotUUIDs(rootHash); the
// others are DerivedUUID(name, variant), from the variant's name alone, so every version of a
// variant names the same ESP and data partition (an update rewrites only the entries of the slot
// it writes) and a fresh image's empty slot B has UUIDs no root hash can give.
func PartitionUUID(n PartitionName, variant string, rootHash []byte) (UUID, error) {
	if err := n.Validate(); err != nil {
		return UUID{}, err
	}
	if variant == "" {
		return UUID{}, fmt.Errorf("partition %s: no variant name", n)
	}
	root, verity, err := SlotUUIDs(rootHash)
	if err != nil {
		return UUID{}, fmt.Errorf("partition %s: %w", n, err)
	}
	switch n {
	case PartRootA:
		return root, nil
	case PartVerityA:
		return verity, nil
	}
	return DerivedUUID(string(n), variant), nil
}
