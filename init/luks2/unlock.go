package luks2

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/pbkdf2"
)

// derive runs a keyslot's KDF. Parameters were range-checked when the header was read.
func (k *kdf) derive(passphrase []byte, keyLen int) ([]byte, error) {
	switch k.Type {
	case "pbkdf2":
		h, err := hashFunc(k.Hash)
		if err != nil {
			return nil, err
		}
		return pbkdf2.Key(passphrase, k.Salt, k.Iterations, keyLen, h), nil
	case "argon2i":
		return argon2.Key(passphrase, k.Salt, uint32(k.Time), uint32(k.Memory), uint8(k.CPUs), uint32(keyLen)), nil
	case "argon2id":
		return argon2.IDKey(passphrase, k.Salt, uint32(k.Time), uint32(k.Memory), uint8(k.CPUs), uint32(keyLen)), nil
	}
	return nil, fmt.Errorf("unsupported kdf %q", k.Type)
}

// verify checks a candidate volume key against digest d.
func (d *digest) verify(key []byte) (bool, error) {
	h, err := hashFunc(d.Hash)
	if err != nil {
		return false, err
	}
	got := pbkdf2.Key(key, d.Salt, d.Iterations, len(d.Digest), h)
	return subtle.ConstantTimeCompare(got, d.Digest) == 1, nil
}

// Unlock finds the keyslot passphrase opens and returns the volume key and that keyslot's id.
// Keyslots are tried high priority first, then normal, each group in id order; keyslots with
// priority ignore are skipped (UnlockKeyslot opens them). When no keyslot matches the error is
// ErrWrongKey; it never contains the passphrase or anything derived from it.
func (h *Header) Unlock(dev io.ReaderAt, passphrase []byte) ([]byte, int, error) {
	var order []Keyslot
	for _, p := range []Priority{PriorityHigh, PriorityNormal} {
		for _, ks := range h.Keyslots() {
			if ks.Priority == p {
				order = append(order, ks)
			}
		}
	}
	var errs []error
	for _, ks := range order {
		key, err := h.UnlockKeyslot(dev, passphrase, ks.ID)
		if err == nil {
			return key, ks.ID, nil
		}
		if !errors.Is(err, ErrWrongKey) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		// A keyslot that could not be tried might be the right one: report that, not a wrong key.
		return nil, -1, errors.Join(errs...)
	}
	return nil, -1, ErrWrongKey
}

// UnlockKeyslot opens keyslot id with passphrase, e.g. the keyslot a token names.
func (h *Header) UnlockKeyslot(dev io.ReaderAt, passphrase []byte, id int) ([]byte, error) {
	sid := strconv.Itoa(id)
	ks := h.meta.Keyslots[sid]
	if ks == nil {
		return nil, fmt.Errorf("luks2: keyslot %d does not exist", id)
	}
	d := h.meta.digestFor(sid)
	if d == nil {
		return nil, fmt.Errorf("luks2: keyslot %d: no digest", id)
	}
	areaKey, err := ks.KDF.derive(passphrase, ks.Area.KeySize)
	if err != nil {
		return nil, fmt.Errorf("luks2: keyslot %d: %w", id, err)
	}
	buf := make([]byte, splitSectorsBytes(ks.KeySize, ks.AF.Stripes))
	if _, err := dev.ReadAt(buf, int64(ks.Area.Offset)); err != nil {
		return nil, fmt.Errorf("luks2: keyslot %d: read %d bytes of key material at offset %d: %w", id, len(buf), ks.Area.Offset, err)
	}
	if err := cryptArea(areaKey, buf, false); err != nil {
		return nil, fmt.Errorf("luks2: keyslot %d: %w", id, err)
	}
	key, err := afMerge(buf, ks.KeySize, ks.AF.Stripes, ks.AF.Hash)
	if err != nil {
		return nil, fmt.Errorf("luks2: keyslot %d: %w", id, err)
	}
	ok, err := d.verify(key)
	if err != nil {
		return nil, fmt.Errorf("luks2: keyslot %d: %w", id, err)
	}
	if !ok {
		clear(key)
		return nil, fmt.Errorf("keyslot %d: %w", id, ErrWrongKey)
	}
	return key, nil
}

// CheckVolumeKey reports whether key is the volume key, by the digest of the data segment.
func (h *Header) CheckVolumeKey(key []byte) bool {
	for _, d := range h.meta.Digests {
		if slices.Contains(d.Segments, "0") {
			ok, err := d.verify(key)
			return ok && err == nil
		}
	}
	return false
}

// CryptParams are the parameters of a dm-crypt target mapping the data segment; the dm package's
// Crypt takes them field by field.
type CryptParams struct {
	Cipher string
	Key    []byte
	// IVOffset is the segment's iv_tweak, in 512-byte sectors.
	IVOffset uint64
	// Offset is where the data starts on the backing device, in 512-byte sectors.
	Offset uint64
	// Length is the size of the mapping in 512-byte sectors, whole encryption sectors only.
	Length     uint64
	SectorSize uint32
	// IVLargeSectors is always false for LUKS2: cryptsetup never sets iv_large_sectors for it,
	// so a volume opened with the flag would read as garbage elsewhere. Spelled out so the
	// caller's table states it.
	IVLargeSectors bool
}

// DMCrypt returns the dm-crypt parameters for the data segment on a device of devSize bytes,
// after checking volumeKey against the digest.
func (h *Header) DMCrypt(volumeKey []byte, devSize int64) (CryptParams, error) {
	if !h.CheckVolumeKey(volumeKey) {
		return CryptParams{}, errors.New("luks2: volume key does not match the segment digest")
	}
	s := h.Segment()
	size := s.Size
	if size == -1 {
		size = devSize - s.Offset
	}
	size -= size % int64(s.SectorSize)
	if size <= 0 || s.Offset+size > devSize {
		return CryptParams{}, fmt.Errorf("luks2: data segment at %d of %d bytes does not fit the %d-byte device", s.Offset, size, devSize)
	}
	return CryptParams{
		Cipher:     s.Cipher,
		Key:        slices.Clone(volumeKey),
		IVOffset:   s.IVTweak,
		Offset:     uint64(s.Offset) / 512,
		Length:     uint64(size) / 512,
		SectorSize: uint32(s.SectorSize),
	}, nil
}
