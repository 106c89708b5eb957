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

// DiskUUID is the GPT disk GUID of an image whose slot A root has this verity root hash.
func DiskUUID(rootHash []byte) UUID { return DerivedUUID("disk", hex.EncodeToString(rootHash)) }

// PartitionUUID returns the PARTUUID of partition n of an image whose slot A root has this
// verity root hash.
//
// root-a and verity-a get the first and the last 128 bits of the root hash, copied raw, as the UAPI
// Discoverable Partitions Specification asks and systemd-repart does: the root hash alone then
// finds both partitions, and forcing version bits would break systemd's lookup. The others are
// DerivedUUID(name, hex(rootHash)).
func PartitionUUID(n PartitionName, rootHash []byte) (UUID, error) {
	if err := n.Validate(); err != nil {
		return UUID{}, err
	}
	if len(rootHash) != sha256.Size {
		return UUID{}, fmt.Errorf("partition %s: root hash is %d bytes, want %d", n, len(rootHash), sha256.Size)
	}
	var u UUID
	switch n {
	case PartRootA:
		copy(u[:], rootHash[:16])
	case PartVerityA:
		copy(u[:], rootHash[16:])
	default:
		u = DerivedUUID(string(n), hex.EncodeToString(rootHash))
	}
	return u, nil
}
