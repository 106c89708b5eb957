// Package disk lays out Ballast's GPT disk image and assembles it: the
// partition plan (names, UAPI type GUIDs, UUIDs derived from the root hash,
// 1 MiB-aligned offsets), the protective MBR and both GPTs, and each
// partition's content written at its offset into a sparse file.
package disk

import (
	"fmt"
	"strings"
)

// Partition names, which are also the GPT partition labels, in table order.
const (
	NameESP     = "esp"
	NameRootA   = "root-a"
	NameVerityA = "verity-a"
	NameRootB   = "root-b"
	NameVerityB = "verity-b"
	NameData    = "data"
)

// Partition type GUIDs from the UAPI Discoverable Partitions Specification.
const (
	TypeESP              = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	TypeRootX86_64       = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
	TypeRootVerityX86_64 = "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5"
	TypeLinuxGeneric     = "0fc63daf-8483-4772-8e79-3d69d8477de4"
)

// AttrReadOnly is the DPS "read-only" partition attribute (bit 60). The
// specification recommends it unconditionally for verity partitions.
const AttrReadOnly = uint64(1) << 60

const (
	// SectorSize is the logical sector size the table is written for.
	SectorSize = 512
	// Alignment of every partition start and size, and of the disk's head and tail.
	Alignment = 1 << 20
	// gptEntriesSectors is the 128 entries of 128 bytes each table copy carries.
	gptEntriesSectors = 128 * 128 / SectorSize
)

// Sizes are the partition sizes in bytes, each a positive multiple of 1 MiB.
// Root and Verity apply to both slots.
type Sizes struct {
	ESP, Root, Verity, Data int64
}

// Partition is one planned partition.
type Partition struct {
	Name       string
	Type       string // type GUID, lower case
	UUID       string // unique partition GUID (PARTUUID), lower case
	Offset     int64  // bytes from the start of the disk
	Size       int64  // bytes
	Attributes uint64 // GPT attribute bits
}

// Layout is a planned disk: its partitions in table order and total size.
type Layout struct {
	DiskGUID   string
	Partitions []Partition
	Size       int64 // bytes: 1 MiB head, the partitions, 1 MiB tail for the backup GPT
}

// Plan lays out an image whose root-a file system has the given verity root
// hash, with every UUID derived from it (see UUIDsFor).
func Plan(sizes Sizes, rootHash []byte) (Layout, error) {
	ids, err := UUIDsFor(rootHash)
	if err != nil {
		return Layout{}, err
	}
	return PlanUUIDs(sizes, ids)
}

// PlanUUIDs places the partitions back to back after a 1 MiB head, in the
// order esp, root-a, verity-a, root-b, verity-b, data, with the given UUIDs.
// The data partition comes last so the initramfs can grow it into whatever
// space the real disk has.
func PlanUUIDs(sizes Sizes, ids UUIDs) (Layout, error) {
	specs := []struct {
		name, typ, uuid string
		size            int64
		attrs           uint64
	}{
		{NameESP, TypeESP, ids.ESP, sizes.ESP, 0},
		{NameRootA, TypeRootX86_64, ids.RootA, sizes.Root, 0},
		{NameVerityA, TypeRootVerityX86_64, ids.VerityA, sizes.Verity, AttrReadOnly},
		{NameRootB, TypeRootX86_64, ids.RootB, sizes.Root, 0},
		{NameVerityB, TypeRootVerityX86_64, ids.VerityB, sizes.Verity, AttrReadOnly},
		{NameData, TypeLinuxGeneric, ids.Data, sizes.Data, 0},
	}

	seen := map[[16]byte]string{}
	checkUUID := func(what, s string) (string, error) {
		u, err := parseUUID(s)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		if u == ([16]byte{}) {
			return "", fmt.Errorf("%s: UUID is all zeros", what)
		}
		if other, dup := seen[u]; dup {
			return "", fmt.Errorf("%s: UUID %s is also used by %s", what, s, other)
		}
		seen[u] = what
		return strings.ToLower(s), nil
	}

	disk, err := checkUUID("disk GUID", ids.Disk)
	if err != nil {
		return Layout{}, err
	}
	l := Layout{DiskGUID: disk}
	off := int64(Alignment)
	for _, s := range specs {
		if s.size <= 0 || s.size%Alignment != 0 {
			return Layout{}, fmt.Errorf("partition %s: size %d is not a positive multiple of %d bytes", s.name, s.size, Alignment)
		}
		uuid, err := checkUUID("partition "+s.name, s.uuid)
		if err != nil {
			return Layout{}, err
		}
		l.Partitions = append(l.Partitions, Partition{
			Name: s.name, Type: s.typ, UUID: uuid, Offset: off, Size: s.size, Attributes: s.attrs,
		})
		off += s.size
	}
	l.Size = off + Alignment
	// The protective MBR records the disk's sector count in 32 bits.
	if l.Size/SectorSize-1 > 0xFFFFFFFF {
		return Layout{}, fmt.Errorf("disk of %d bytes is too large for a protective MBR", l.Size)
	}
	return l, nil
}

// Partition returns the named partition.
func (l Layout) Partition(name string) (Partition, bool) {
	for _, p := range l.Partitions {
		if p.Name == name {
			return p, true
		}
	}
	return Partition{}, false
}

// UUID returns the named partition's UUID, or "" if there is no such partition.
func (l Layout) UUID(name string) string {
	p, _ := l.Partition(name)
	return p.UUID
}

// validate checks a layout that may not have come from Plan: sector-aligned,
// ordered, non-overlapping partitions inside the GPT's usable area.
func (l Layout) validate() error {
	if l.Size <= 0 || l.Size%SectorSize != 0 {
		return fmt.Errorf("disk size %d is not a positive multiple of %d", l.Size, SectorSize)
	}
	if _, err := parseUUID(l.DiskGUID); err != nil {
		return fmt.Errorf("disk GUID: %w", err)
	}
	firstUsable := int64(2+gptEntriesSectors) * SectorSize
	lastUsableEnd := l.Size - int64(1+gptEntriesSectors)*SectorSize
	prevEnd := firstUsable
	names := map[string]bool{}
	for _, p := range l.Partitions {
		switch {
		case names[p.Name]:
			return fmt.Errorf("partition %s: name used twice", p.Name)
		case p.Offset%SectorSize != 0 || p.Size <= 0 || p.Size%SectorSize != 0:
			return fmt.Errorf("partition %s: offset %d and size %d must be positive whole sectors", p.Name, p.Offset, p.Size)
		case p.Offset < prevEnd:
			return fmt.Errorf("partition %s: starts at %d, before the end of the previous one or the GPT (%d)", p.Name, p.Offset, prevEnd)
		case p.Offset+p.Size > lastUsableEnd:
			return fmt.Errorf("partition %s: ends at %d, past the last usable byte %d", p.Name, p.Offset+p.Size, lastUsableEnd)
		}
		if _, err := parseUUID(p.Type); err != nil {
			return fmt.Errorf("partition %s type: %w", p.Name, err)
		}
		if _, err := parseUUID(p.UUID); err != nil {
			return fmt.Errorf("partition %s: %w", p.Name, err)
		}
		names[p.Name] = true
		prevEnd = p.Offset + p.Size
	}
	return nil
}

// ManifestPartition is a partition as manifest.json lists it.
type ManifestPartition struct {
	Name     string `json:"name"`
	TypeGUID string `json:"type_guid"`
	UUID     string `json:"uuid"`
	Offset   int64  `json:"offset"`
	Size     int64  `json:"size"`
}

// Manifest lists the partitions for manifest.json, in table order.
func (l Layout) Manifest() []ManifestPartition {
	out := make([]ManifestPartition, 0, len(l.Partitions))
	for _, p := range l.Partitions {
		out = append(out, ManifestPartition{Name: p.Name, TypeGUID: p.Type, UUID: p.UUID, Offset: p.Offset, Size: p.Size})
	}
	return out
}
