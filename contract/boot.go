package contract

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Kernel command line parameters Ballast writes and reads.
const (
	ParamRootHash     = "roothash"              // dm-verity root hash (sha256, hex) of the slot's root
	ParamSlot         = "ballast.slot"          // the A/B slot this UKI boots
	ParamRoot         = "ballast.root"          // PARTUUID of the slot's root partition
	ParamVerity       = "ballast.verity"        // PARTUUID of the slot's verity partition
	ParamVerityBlocks = "ballast.verity.blocks" // 4096-byte data blocks the hash tree covers
	ParamVeritySalt   = "ballast.verity.salt"   // the tree's salt, hex
	ParamData         = "ballast.data"          // PARTUUID of the data partition
	ParamUserData     = "ballast.userdata"      // user data, base64 (optional)
)

// VerityBlockSize is the data and hash block size of every Ballast verity tree.
const VerityBlockSize = 4096

// Boot is what the builder puts on a UKI's command line for the initramfs: which partitions to
// trust and the hash that proves the root. The command line is a section of the UKI, so these
// values are as trusted as the UKI itself.
type Boot struct {
	RootHash     string // 64 lower-case hex digits
	Slot         Slot
	Root         UUID
	Verity       UUID
	Data         UUID
	VerityBlocks uint64
	VeritySalt   string // lower-case hex, an even number of digits
}

// Params returns the boot parameters as command line words, in a fixed order.
func (b Boot) Params() Cmdline {
	return Cmdline{
		KV(ParamRootHash, b.RootHash),
		KV(ParamSlot, string(b.Slot)),
		KV(ParamRoot, b.Root.String()),
		KV(ParamVerity, b.Verity.String()),
		KV(ParamVerityBlocks, strconv.FormatUint(b.VerityBlocks, 10)),
		KV(ParamVeritySalt, b.VeritySalt),
		KV(ParamData, b.Data.String()),
	}
}

// Validate checks every field; the error names the parameter.
func (b Boot) Validate() error {
	if h, err := hex.DecodeString(b.RootHash); err != nil || len(h) != 32 || b.RootHash != strings.ToLower(b.RootHash) {
		return fmt.Errorf("kernel command line: %s=%q is not a sha256 (64 lower-case hex digits)", ParamRootHash, b.RootHash)
	}
	if err := b.Slot.Validate(); err != nil {
		return fmt.Errorf("kernel command line: %s: %w", ParamSlot, err)
	}
	for _, u := range []struct {
		key string
		id  UUID
	}{{ParamRoot, b.Root}, {ParamVerity, b.Verity}, {ParamData, b.Data}} {
		if u.id.IsZero() {
			return fmt.Errorf("kernel command line: %s is the zero UUID", u.key)
		}
	}
	if b.VerityBlocks == 0 {
		return fmt.Errorf("kernel command line: %s must be positive", ParamVerityBlocks)
	}
	if _, err := hex.DecodeString(b.VeritySalt); err != nil || b.VeritySalt != strings.ToLower(b.VeritySalt) {
		return fmt.Errorf("kernel command line: %s=%q is not lower-case hex bytes", ParamVeritySalt, b.VeritySalt)
	}
	return nil
}

// ParseBoot reads the boot parameters from a command line; the error names the parameter that is
// missing or malformed. Hex and UUIDs are accepted in either case and returned in lower case.
func ParseBoot(c Cmdline) (Boot, error) {
	var b Boot
	get := func(key string) (string, error) {
		v, ok := c.Get(key)
		if !ok {
			return "", fmt.Errorf("kernel command line: %s= missing", key)
		}
		return strings.ToLower(v), nil
	}
	var err error
	if b.RootHash, err = get(ParamRootHash); err != nil {
		return Boot{}, err
	}
	slot, err := get(ParamSlot)
	if err != nil {
		return Boot{}, err
	}
	b.Slot = Slot(slot)
	for _, u := range []struct {
		key string
		dst *UUID
	}{{ParamRoot, &b.Root}, {ParamVerity, &b.Verity}, {ParamData, &b.Data}} {
		v, err := get(u.key)
		if err != nil {
			return Boot{}, err
		}
		if *u.dst, err = ParseUUID(v); err != nil {
			return Boot{}, fmt.Errorf("kernel command line: %s=%q is malformed: %w", u.key, v, err)
		}
	}
	blocks, err := get(ParamVerityBlocks)
	if err != nil {
		return Boot{}, err
	}
	if b.VerityBlocks, err = strconv.ParseUint(blocks, 10, 64); err != nil {
		return Boot{}, fmt.Errorf("kernel command line: %s=%q is not a positive number", ParamVerityBlocks, blocks)
	}
	if b.VeritySalt, err = get(ParamVeritySalt); err != nil {
		return Boot{}, err
	}
	if err := b.Validate(); err != nil {
		return Boot{}, err
	}
	return b, nil
}
