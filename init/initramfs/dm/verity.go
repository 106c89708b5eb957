package dm

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Verity describes a dm-verity mapping in typed fields. The hash format is always version 1, what
// `veritysetup format` writes by default.
type Verity struct {
	DataDev        string // "major:minor" or a device path
	HashDev        string // "major:minor" or a device path
	DataBlockSize  uint32 // bytes, e.g. 4096
	HashBlockSize  uint32 // bytes, e.g. 4096
	DataBlocks     uint64 // number of data blocks covered by the tree
	HashStartBlock uint64 // where the tree starts on HashDev, in hash blocks (1: after veritysetup's superblock)
	Algorithm      string // e.g. "sha256"
	RootHash       string // hex
	Salt           string // hex; empty for no salt
	// RestartOnCorrupt reboots the machine when a block fails verification instead of returning
	// EIO, so a tampered root never gets to run code (restart_on_corruption).
	RestartOnCorrupt bool
	// Options are further optional arguments, one word per element (e.g. "ignore_zero_blocks", or
	// "fec_roots", "2").
	Options []string
}

// digestSizes lets Validate reject a root hash of the wrong length for common algorithms, which the
// kernel would only report as a bare EINVAL.
var digestSizes = map[string]int{"sha1": 20, "sha256": 32, "sha512": 64}

// VerityParams renders the verity target parameters:
// "1 <data dev> <hash dev> <data bs> <hash bs> <blocks> <hash start> <alg> <root hash> <salt> [<#opts> <opts>...]".
// It does not check the fields; Target does (see Validate).
func VerityParams(v Verity) string {
	salt := "-" // the kernel's spelling of "no salt"
	if v.Salt != "" {
		salt = strings.ToLower(v.Salt)
	}
	words := []string{
		"1", v.DataDev, v.HashDev,
		strconv.FormatUint(uint64(v.DataBlockSize), 10), strconv.FormatUint(uint64(v.HashBlockSize), 10),
		strconv.FormatUint(v.DataBlocks, 10), strconv.FormatUint(v.HashStartBlock, 10),
		v.Algorithm, strings.ToLower(v.RootHash), salt,
	}
	opts := v.options()
	if len(opts) > 0 {
		words = append(words, strconv.Itoa(len(opts)))
		words = append(words, opts...)
	}
	return strings.Join(words, " ")
}

func (v Verity) options() []string {
	var opts []string
	if v.RestartOnCorrupt {
		opts = append(opts, "restart_on_corruption")
	}
	return append(opts, v.Options...)
}

// Validate checks the fields the way the kernel will, so a bad command line value is reported by
// name rather than as EINVAL from DM_TABLE_LOAD.
func (v Verity) Validate() error {
	for _, d := range []struct{ what, dev string }{{"data device", v.DataDev}, {"hash device", v.HashDev}} {
		if d.dev == "" || strings.ContainsAny(d.dev, " \t\n\x00") {
			return fmt.Errorf("verity: invalid %s %q", d.what, d.dev)
		}
	}
	for _, b := range []struct {
		what string
		size uint32
	}{{"data block size", v.DataBlockSize}, {"hash block size", v.HashBlockSize}} {
		if b.size < 512 || b.size&(b.size-1) != 0 {
			return fmt.Errorf("verity: %s %d is not a power of two of at least 512", b.what, b.size)
		}
	}
	if v.DataBlocks == 0 {
		return fmt.Errorf("verity: no data blocks")
	}
	if v.DataBlocks > (1<<63)/uint64(v.DataBlockSize) {
		return fmt.Errorf("verity: %d data blocks of %d bytes overflow", v.DataBlocks, v.DataBlockSize)
	}
	if v.Algorithm == "" || strings.ContainsAny(v.Algorithm, " \t\n\x00") {
		return fmt.Errorf("verity: invalid hash algorithm %q", v.Algorithm)
	}
	root, err := hex.DecodeString(v.RootHash)
	if err != nil || len(root) == 0 {
		return fmt.Errorf("verity: root hash %q is not hex", v.RootHash)
	}
	if n, ok := digestSizes[v.Algorithm]; ok && len(root) != n {
		return fmt.Errorf("verity: root hash has %d bytes, %s digests have %d", len(root), v.Algorithm, n)
	}
	if _, err := hex.DecodeString(v.Salt); err != nil {
		return fmt.Errorf("verity: salt %q is not hex", v.Salt)
	}
	for _, o := range v.Options {
		if o == "" || strings.ContainsAny(o, " \t\n\x00") {
			return fmt.Errorf("verity: invalid option %q (one word per element)", o)
		}
	}
	return nil
}

// Target validates v and returns the single-target table mapping the whole verified data area.
func (v Verity) Target() (Target, error) {
	if err := v.Validate(); err != nil {
		return Target{}, err
	}
	return Target{Start: 0, Length: v.DataBlocks * uint64(v.DataBlockSize) / 512, Type: "verity", Params: VerityParams(v)}, nil
}
