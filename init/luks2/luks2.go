// Package luks2 reads, writes and unlocks LUKS2 volumes the way cryptsetup lays them out, so the
// initramfs can format and open /local without cryptsetup or libcryptsetup, and a rescue system
// with stock cryptsetup can still open what Ballast made (and the other way round).
//
// On disk (see the LUKS2 On-Disk Format Specification): two copies of a header area at 0 and at
// hdr_size, each a 4096-byte binary header followed by the JSON metadata, then the keyslots area,
// then the data segment. Ballast's volumes use 16 KiB header areas, keyslots from 32 KiB, and data
// from 16 MiB in 4096-byte aes-xts-plain64 sectors, which is what `cryptsetup luksFormat --type
// luks2 --sector-size 4096` writes too.
//
// Everything read from a device is treated as hostile: sizes and offsets are bounds-checked
// before use and malformed metadata is an error, never a panic.
package luks2

import (
	"errors"
	"fmt"
)

const (
	// HeaderSize is the size of one header area (binary header plus JSON) that Format writes.
	HeaderSize = 16 << 10
	// DataOffset is where Format puts the data segment, in bytes from the start of the device.
	DataOffset = 16 << 20
	// DataSectorSize is the encryption sector size of the data segments Format writes.
	DataSectorSize = 4096
	// VolumeKeySize is the volume key size Format takes: aes-xts-plain64 with two AES-256 keys.
	VolumeKeySize = 64
	// MinIterations is the smallest PBKDF2 iteration count Format accepts, cryptsetup's minimum.
	MinIterations = 1000
	// MaxKeyslots is the number of keyslot (and token) ids LUKS2 allows.
	MaxKeyslots = 32

	binHeaderSize = 4096
	// areaSectorSize is the unit the keyslot areas are encrypted in, whatever the data sector size.
	areaSectorSize = 512
	afStripes      = 4000
	saltSize       = 32
)

// ErrWrongKey is returned by Unlock when no keyslot opens with the passphrase.
var ErrWrongKey = errors.New("luks2: no keyslot matches the passphrase")

// Copy names one of the two header copies.
type Copy int

const (
	Primary   Copy = iota // at offset 0
	Secondary             // at offset hdr_size
)

func (c Copy) String() string {
	if c == Primary {
		return "primary"
	}
	return "secondary"
}

// Priority orders keyslots for Unlock. The zero value is normal, so a KeyslotSpec without one
// behaves like cryptsetup's default.
type Priority int8

const (
	PriorityNormal Priority = 0  // on disk: 1, or no "priority" field
	PriorityHigh   Priority = 1  // on disk: 2, tried before normal keyslots
	PriorityIgnore Priority = -1 // on disk: 0, only used when asked for by number
)

func (p Priority) String() string {
	switch p {
	case PriorityHigh:
		return "high"
	case PriorityIgnore:
		return "ignore"
	}
	return "normal"
}

// onDisk is the value of a keyslot's "priority" field; nil leaves the field out (normal).
func (p Priority) onDisk() *int {
	var v int
	switch p {
	case PriorityNormal:
		return nil
	case PriorityHigh:
		v = 2
	case PriorityIgnore:
		v = 0
	}
	return &v
}

func priorityFromDisk(v *int) (Priority, error) {
	if v == nil {
		return PriorityNormal, nil
	}
	switch *v {
	case 0:
		return PriorityIgnore, nil
	case 1:
		return PriorityNormal, nil
	case 2:
		return PriorityHigh, nil
	}
	return 0, fmt.Errorf("priority %d is not 0, 1 or 2", *v)
}
