package verity

import "encoding/binary"

// The on-disk superblock, as cryptsetup defines it (all integers little-endian):
//
//	0   signature[8]    "verity\0\0"
//	8   version u32     1
//	12  hash_type u32   1 (0 is the Chrome OS format, which salts after the block)
//	16  uuid[16]
//	32  algorithm[32]   NUL-padded name
//	64  data_block_size u32
//	68  hash_block_size u32
//	72  data_blocks u64
//	80  salt_size u16
//	82  pad[6]
//	88  salt[256]
//	344 pad[168]
const (
	superblockSize = 512
	sbVersion      = 1
	hashType       = 1
	algorithm      = "sha256"
	signature      = "verity\x00\x00"
)

// marshalSuperblock returns the superblock padded with zeros to one hash block, which is where
// veritysetup starts the tree. p has been validated: the salt fits.
func marshalSuperblock(p Params, dataBlocks uint64) []byte {
	b := make([]byte, treeOffset(p.HashBlockSize))
	le := binary.LittleEndian
	copy(b[0:8], signature)
	le.PutUint32(b[8:], sbVersion)
	le.PutUint32(b[12:], hashType)
	copy(b[16:32], p.UUID[:])
	copy(b[32:64], algorithm)
	le.PutUint32(b[64:], uint32(p.DataBlockSize))
	le.PutUint32(b[68:], uint32(p.HashBlockSize))
	le.PutUint64(b[72:], dataBlocks)
	le.PutUint16(b[80:], uint16(len(p.Salt)))
	copy(b[88:88+MaxSaltSize], p.Salt)
	return b
}

// treeOffset is where the first hash block goes: the superblock rounded up to a hash block.
func treeOffset(hashBlockSize int) int {
	return (superblockSize + hashBlockSize - 1) / hashBlockSize * hashBlockSize
}
