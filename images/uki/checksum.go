package uki

// peChecksum is the PE image checksum over the concatenation of parts, whose CheckSum field must
// already be zero: the ones' complement sum of the file as little-endian 16-bit words (an odd
// last byte counts as a word with a zero high byte), folded to 16 bits, plus the file length.
// UEFI does not check it, but a correct value keeps tools such as osslsigncode and pesign quiet.
func peChecksum(parts ...[]byte) uint32 {
	var (
		sum    uint64
		length uint64
		odd    bool // the previous part ended in the middle of a word
	)
	for _, p := range parts {
		length += uint64(len(p))
		if odd && len(p) > 0 {
			sum += uint64(p[0]) << 8
			p = p[1:]
			odd = false
		}
		for len(p) >= 2 {
			sum += uint64(p[0]) | uint64(p[1])<<8
			p = p[2:]
		}
		if len(p) == 1 {
			sum += uint64(p[0])
			odd = true
		}
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint32(sum + length)
}
