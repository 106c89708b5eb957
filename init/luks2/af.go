package luks2

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
)

// The anti-forensic splitter of LUKS1, which LUKS2 keyslots still use ("af": {"type": "luks1"}):
// the key is spread over many stripes so that wiping any part of a keyslot area destroys it.
// Stripes 0..n-2 are random; each is XORed into an accumulator that is then diffused with the
// hash; the last stripe is the accumulator XOR the key.

func hashFunc(name string) (func() hash.Hash, error) {
	switch name {
	case "sha1":
		return sha1.New, nil
	case "sha256":
		return sha256.New, nil
	case "sha512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("unsupported hash %q", name)
}

// diffuse replaces each digest-sized chunk i of buf with H(be32(i) || chunk), the last chunk
// truncated to its length.
func diffuse(buf []byte, h hash.Hash) {
	ds := h.Size()
	var idx [4]byte
	var sum []byte
	for i := 0; i*ds < len(buf); i++ {
		chunk := buf[i*ds : min((i+1)*ds, len(buf))]
		h.Reset()
		binary.BigEndian.PutUint32(idx[:], uint32(i))
		h.Write(idx[:])
		h.Write(chunk)
		sum = h.Sum(sum[:0])
		copy(chunk, sum)
	}
}

func xorInto(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}

// afSplit spreads key over stripes*len(key) bytes, the random stripes read from rand.
func afSplit(key []byte, stripes int, hashName string, rand io.Reader) ([]byte, error) {
	newHash, err := hashFunc(hashName)
	if err != nil {
		return nil, err
	}
	n := len(key)
	out := make([]byte, n*stripes)
	if _, err := io.ReadFull(rand, out[:n*(stripes-1)]); err != nil {
		return nil, fmt.Errorf("random stripes: %w", err)
	}
	h := newHash()
	acc := make([]byte, n)
	for i := 0; i < stripes-1; i++ {
		xorInto(acc, out[i*n:(i+1)*n])
		diffuse(acc, h)
	}
	last := out[(stripes-1)*n:]
	copy(last, acc)
	xorInto(last, key)
	return out, nil
}

// afMerge recovers the keySize-byte key from split, which holds at least stripes*keySize bytes.
func afMerge(split []byte, keySize, stripes int, hashName string) ([]byte, error) {
	newHash, err := hashFunc(hashName)
	if err != nil {
		return nil, err
	}
	if len(split) < keySize*stripes {
		return nil, fmt.Errorf("split key material is %d bytes, need %d", len(split), keySize*stripes)
	}
	h := newHash()
	acc := make([]byte, keySize)
	for i := 0; i < stripes-1; i++ {
		xorInto(acc, split[i*keySize:(i+1)*keySize])
		diffuse(acc, h)
	}
	xorInto(acc, split[(stripes-1)*keySize:stripes*keySize])
	return acc, nil
}
