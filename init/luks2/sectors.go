package luks2

import (
	"crypto/aes"
	"fmt"

	"golang.org/x/crypto/xts"
)

// SectorCipher encrypts and decrypts a data segment's sectors exactly as dm-crypt does with the
// table from DMCrypt, for writing data before the mapping exists (the first-boot copy) and for
// checking the mapping in tests.
//
// The IV rule: LUKS2 never sets dm-crypt's iv_large_sectors, so plain64 counts 512-byte sectors
// even when the encryption unit is 4096 bytes. The n-th 4096-byte sector of the segment is
// encrypted with IV n*8 + iv_tweak. (Checked against `cryptsetup reencrypt --encrypt`, which
// encrypts in userspace, in the tests.)
type SectorCipher struct {
	c          *xts.Cipher
	sectorSize int
	ivTweak    uint64
}

// NewSectorCipher returns the cipher for segment s under volumeKey.
func NewSectorCipher(volumeKey []byte, s Segment) (*SectorCipher, error) {
	if s.Cipher != "aes-xts-plain64" {
		return nil, fmt.Errorf("luks2: unsupported data cipher %q", s.Cipher)
	}
	if s.SectorSize < 512 || s.SectorSize > 4096 || s.SectorSize&(s.SectorSize-1) != 0 {
		return nil, fmt.Errorf("luks2: invalid data sector size %d", s.SectorSize)
	}
	c, err := xtsCipher(volumeKey)
	if err != nil {
		return nil, err
	}
	return &SectorCipher{c: c, sectorSize: s.SectorSize, ivTweak: s.IVTweak}, nil
}

func xtsCipher(key []byte) (*xts.Cipher, error) {
	if len(key) != 32 && len(key) != 64 {
		return nil, fmt.Errorf("luks2: aes-xts key of %d bytes, want 32 or 64", len(key))
	}
	c, err := xts.NewCipher(aes.NewCipher, key)
	if err != nil {
		return nil, fmt.Errorf("luks2: aes-xts: %w", err)
	}
	return c, nil
}

// EncryptSectors encrypts src into dst (which may be src), whole sectors only; sector is the
// index of src's first sector in SectorSize units from the start of the data segment.
func (s *SectorCipher) EncryptSectors(dst, src []byte, sector uint64) error {
	return s.crypt(dst, src, sector, s.c.Encrypt)
}

// DecryptSectors is the inverse of EncryptSectors.
func (s *SectorCipher) DecryptSectors(dst, src []byte, sector uint64) error {
	return s.crypt(dst, src, sector, s.c.Decrypt)
}

func (s *SectorCipher) crypt(dst, src []byte, sector uint64, f func(out, in []byte, iv uint64)) error {
	if len(src)%s.sectorSize != 0 || len(dst) < len(src) {
		return fmt.Errorf("luks2: %d bytes at sector %d are not whole %d-byte sectors (or dst is short)", len(src), sector, s.sectorSize)
	}
	per := uint64(s.sectorSize / 512)
	for i := 0; i < len(src); i += s.sectorSize {
		iv := (sector+uint64(i/s.sectorSize))*per + s.ivTweak
		f(dst[i:i+s.sectorSize], src[i:i+s.sectorSize], iv)
	}
	return nil
}

// cryptArea en- or decrypts keyslot area material: aes-xts-plain64 in 512-byte sectors, the IV
// counting from 0 at the start of the area.
func cryptArea(key, buf []byte, encrypt bool) error {
	c, err := xtsCipher(key)
	if err != nil {
		return err
	}
	for i := 0; i+areaSectorSize <= len(buf); i += areaSectorSize {
		b := buf[i : i+areaSectorSize]
		if encrypt {
			c.Encrypt(b, b, uint64(i/areaSectorSize))
		} else {
			c.Decrypt(b, b, uint64(i/areaSectorSize))
		}
	}
	return nil
}
