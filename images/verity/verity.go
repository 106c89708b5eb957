// Package verity builds a dm-verity hash device for a read-only root filesystem: a 512-byte
// superblock and a sha256 hash tree, laid out exactly as `veritysetup format` (format 1) writes
// them, so veritysetup and the kernel read it and the initramfs only needs the root hash.
package verity

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"math/bits"
)

const (
	// DefaultBlockSize is used for data and hash blocks when Params leaves them zero; it is
	// veritysetup's default and the page size the kernel requires on x86-64.
	DefaultBlockSize = 4096

	// MaxSaltSize is the largest salt the superblock holds.
	MaxSaltSize = 256

	// SaltSize is what NewSalt returns, the same length as the digest, as veritysetup picks.
	SaltSize = sha256.Size

	minBlockSize = 512
	// The kernel wants blocks no larger than a page; 64 KiB is the largest page size Linux has.
	maxBlockSize = 64 << 10
)

// Params says how to build the tree. The zero block sizes mean DefaultBlockSize.
type Params struct {
	// Salt is prepended to every hashed block. The build derives it so images are reproducible.
	Salt []byte
	// UUID is stored in the superblock; veritysetup shows it, the kernel ignores it.
	UUID          [16]byte
	DataBlockSize int
	HashBlockSize int
}

// Result describes a built hash device.
type Result struct {
	// RootHash is the sha256 digest to put on the kernel command line (roothash=).
	RootHash []byte
	// DataBlocks is the number of data blocks the tree covers.
	DataBlocks uint64
	// HashSize is the number of bytes written to the hash device, superblock included.
	HashSize int64
}

// NewSalt returns SaltSize random bytes, for callers that do not derive a salt.
func NewSalt() []byte {
	salt := make([]byte, SaltSize)
	// crypto/rand.Read does not fail; it aborts the program if the kernel's generator is broken.
	rand.Read(salt)
	return salt
}

// HashSize returns the size of the hash device Build writes for dataSize bytes of data, so the
// caller can size the partition before building.
func HashSize(dataSize int64, p Params) (int64, error) {
	p, err := p.withDefaults()
	if err != nil {
		return 0, err
	}
	l, err := newLayout(dataSize, p)
	if err != nil {
		return 0, err
	}
	return l.hashSize(), nil
}

// Build hashes dataSize bytes of data and writes the superblock and the tree to hash, starting
// at offset 0. Every byte up to Result.HashSize is written, padding included, so stale contents
// of a reused device cannot leak into the tree. The bottom level is hashed on all CPUs and kept
// in memory until written, about dataSize/128 bytes with the default block sizes.
func Build(data io.ReaderAt, dataSize int64, hash io.WriterAt, p Params) (Result, error) {
	p, err := p.withDefaults()
	if err != nil {
		return Result{}, err
	}
	l, err := newLayout(dataSize, p)
	if err != nil {
		return Result{}, err
	}
	if _, err := hash.WriteAt(marshalSuperblock(p, l.dataBlocks), 0); err != nil {
		return Result{}, fmt.Errorf("verity: write superblock: %w", err)
	}
	root, err := l.build(data, hash, p.Salt)
	if err != nil {
		return Result{}, err
	}
	return Result{RootHash: root, DataBlocks: l.dataBlocks, HashSize: l.hashSize()}, nil
}

func (p Params) withDefaults() (Params, error) {
	if p.DataBlockSize == 0 {
		p.DataBlockSize = DefaultBlockSize
	}
	if p.HashBlockSize == 0 {
		p.HashBlockSize = DefaultBlockSize
	}
	for _, b := range []struct {
		name string
		size int
	}{{"data", p.DataBlockSize}, {"hash", p.HashBlockSize}} {
		if b.size < minBlockSize || b.size > maxBlockSize || bits.OnesCount(uint(b.size)) != 1 {
			return p, fmt.Errorf("verity: %s block size %d: want a power of two from %d to %d",
				b.name, b.size, minBlockSize, maxBlockSize)
		}
	}
	if len(p.Salt) > MaxSaltSize {
		return p, fmt.Errorf("verity: salt of %d bytes: at most %d fit the superblock", len(p.Salt), MaxSaltSize)
	}
	return p, nil
}
