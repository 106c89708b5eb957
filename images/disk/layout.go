// Package disk lays out Ballast's GPT disk image and assembles it: the partition plan (names,
// UAPI type GUIDs, UUIDs from the variant's name and slot A's root hash, 1 MiB-aligned offsets), the protective MBR
// and both GPTs (images/gpt), and each partition's content written at its offset into a sparse
// file.
package disk

import (
	"fmt"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/format"
)

// Partition type GUIDs from the UAPI Discoverable Partitions Specification that are the same on
// every architecture; the root and verity types are the architecture's (contract.ArchInfo).
const (
	TypeESP          = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	TypeLinuxGeneric = "0fc63daf-8483-4772-8e79-3d69d8477de4"
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
	Name       contract.PartitionName // also the GPT partition label
	Type       string                 // type GUID, lower case
	UUID       contract.UUID          // unique partition GUID (PARTUUID)
	Offset     int64                  // bytes from the start of the disk
	Size       int64                  // bytes
	Attributes uint64                 // GPT attribute bits
}

// Layout is a planned disk: its partitions in table order and total size.
type Layout struct {
	// Arch is the architecture whose DPS root and verity types the root and verity partitions carry.
	Arch       contract.Arch
	DiskGUID   contract.UUID
	Partitions []Partition
	Size       int64 // bytes: 1 MiB head, the partitions, a tail of at least 1 MiB for the backup GPT
}

// Plan lays out an image for arch of the variant whose root-a file system has the given verity
// root hash: the root and verity partitions typed as the architecture's DPS root and root verity,
// the partitions of contract.Partitions back to back after a 1 MiB head, each with its UUID from
// contract.PartitionUUID (slot A's from the root hash, the others from the variant's name) and the
// disk GUID from contract.DiskUUID, so the same input always gives the same disk and every version
// of a variant the same ESP and data partition.
func Plan(arch contract.Arch, sizes Sizes, variant string, rootHash []byte) (Layout, error) {
	// ParseArch rather than Info: an Arch from outside the constants is an input error here, and
	// its machine spelling ("aarch64") names the same architecture.
	arch, err := contract.ParseArch(string(arch))
	if err != nil {
		return Layout{}, fmt.Errorf("disk: %w", err)
	}
	info := arch.Info()
	spec := map[contract.PartitionName]struct {
		typ   string
		size  int64
		attrs uint64
	}{
		contract.PartESP:     {TypeESP, sizes.ESP, 0},
		contract.PartRootA:   {info.RootType, sizes.Root, 0},
		contract.PartVerityA: {info.RootVerityType, sizes.Verity, AttrReadOnly},
		contract.PartRootB:   {info.RootType, sizes.Root, 0},
		contract.PartVerityB: {info.RootVerityType, sizes.Verity, AttrReadOnly},
		contract.PartData:    {TypeLinuxGeneric, sizes.Data, 0},
	}
	if len(rootHash) != 32 {
		return Layout{}, fmt.Errorf("disk: root hash is %d bytes, want 32", len(rootHash))
	}
	if variant == "" {
		return Layout{}, fmt.Errorf("disk: no variant name")
	}
	l := Layout{Arch: arch, DiskGUID: contract.DiskUUID(variant)}
	off := int64(Alignment)
	for _, name := range contract.Partitions() {
		s, ok := spec[name]
		if !ok {
			return Layout{}, fmt.Errorf("disk: no type for partition %s", name)
		}
		if s.size <= 0 || s.size%Alignment != 0 {
			return Layout{}, fmt.Errorf("partition %s: size %d is not a positive multiple of %d bytes", name, s.size, Alignment)
		}
		id, err := contract.PartitionUUID(name, variant, rootHash)
		if err != nil {
			return Layout{}, err
		}
		l.Partitions = append(l.Partitions, Partition{
			Name: name, Type: s.typ, UUID: id, Offset: off, Size: s.size, Attributes: s.attrs,
		})
		off += s.size
	}
	// The tail holds the backup GPT, and whatever more it takes for a VHD's geometry to describe
	// the disk exactly (format.ExactVHDSize), so a VHD of it converts back whole in any tool.
	l.Size = format.ExactVHDSize(off + Alignment)
	if err := l.validate(); err != nil {
		return Layout{}, err
	}
	return l, nil
}

// Partition returns the named partition; a name the layout lacks is an error naming it.
func (l Layout) Partition(name contract.PartitionName) (Partition, error) {
	for _, p := range l.Partitions {
		if p.Name == name {
			return p, nil
		}
	}
	if err := name.Validate(); err != nil {
		return Partition{}, fmt.Errorf("disk: %w", err)
	}
	return Partition{}, fmt.Errorf("disk: the layout has no partition %s", name)
}

// UUID returns the named partition's PARTUUID.
func (l Layout) UUID(name contract.PartitionName) (contract.UUID, error) {
	p, err := l.Partition(name)
	return p.UUID, err
}

// validate checks a layout that may not have come from Plan: known names, distinct non-zero
// UUIDs, sector-aligned, ordered, non-overlapping partitions inside the GPT's usable area.
func (l Layout) validate() error {
	if l.Size <= 0 || l.Size%SectorSize != 0 {
		return fmt.Errorf("disk size %d is not a positive multiple of %d", l.Size, SectorSize)
	}
	// The protective MBR records the disk's sector count in 32 bits.
	if l.Size/SectorSize-1 > 0xFFFFFFFF {
		return fmt.Errorf("disk of %d bytes is too large for a protective MBR", l.Size)
	}
	seen := map[contract.UUID]string{}
	checkUUID := func(what string, u contract.UUID) error {
		if u.IsZero() {
			return fmt.Errorf("%s: UUID is all zeros", what)
		}
		if other, dup := seen[u]; dup {
			return fmt.Errorf("%s: UUID %s is also used by %s", what, u, other)
		}
		seen[u] = what
		return nil
	}
	if err := checkUUID("disk GUID", l.DiskGUID); err != nil {
		return err
	}
	firstUsable := int64(2+gptEntriesSectors) * SectorSize
	lastUsableEnd := l.Size - int64(1+gptEntriesSectors)*SectorSize
	prevEnd := firstUsable
	names := map[contract.PartitionName]bool{}
	for _, p := range l.Partitions {
		if err := p.Name.Validate(); err != nil {
			return fmt.Errorf("partition: %w", err)
		}
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
		if _, err := contract.ParseUUID(p.Type); err != nil {
			return fmt.Errorf("partition %s type: %w", p.Name, err)
		}
		if err := checkUUID("partition "+string(p.Name), p.UUID); err != nil {
			return err
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
		out = append(out, ManifestPartition{Name: string(p.Name), TypeGUID: p.Type, UUID: p.UUID.String(), Offset: p.Offset, Size: p.Size})
	}
	return out
}
