package luks2

import (
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"golang.org/x/crypto/pbkdf2"
)

// FormatOptions describe a new volume.
type FormatOptions struct {
	UUID  string // canonical 36-character form; empty: a random version 4 UUID from Rand
	Label string // at most 47 bytes
	// VolumeKey is the 64-byte aes-xts-plain64 data key; nil: 64 bytes from Rand.
	VolumeKey []byte
	Keyslots  []KeyslotSpec // keyslot i gets id i
	// Tokens are added as tokens 0, 1, ...; each is a JSON object with "type" and "keyslots".
	Tokens []json.RawMessage
	// DigestIterations is the PBKDF2 iteration count of the volume key digest; 0 means
	// MinIterations, enough for a random 512-bit key.
	DigestIterations int
	// Rand supplies every random byte Format uses (UUID, key, salts, AF stripes), in a fixed
	// order, so the same inputs give the same bytes on disk; nil means crypto/rand.
	Rand io.Reader
}

// KeyslotSpec describes one PBKDF2-SHA256 keyslot. Ballast's passphrases are high-entropy (a
// TPM-unsealed random key, a 256-bit recovery key), so a low iteration count costs no security
// and keeps unlocking fast on small VMs.
type KeyslotSpec struct {
	Passphrase []byte
	Iterations int // at least MinIterations
	Priority   Priority
}

// keyslotAreaSize is one keyslot's area: 64-byte key times 4000 stripes, rounded up to 4 KiB.
const keyslotAreaSize = (VolumeKeySize*afStripes + 4095) / 4096 * 4096

// Format writes a new LUKS2 volume on dev, a device of size bytes: both header copies, the
// keyslots, zeros over the rest of the keyslots area. The data area is left as it is.
func Format(dev io.WriterAt, size int64, opts FormatOptions) (*Header, error) {
	rnd := opts.Rand
	if rnd == nil {
		rnd = crand.Reader
	}
	if size < DataOffset+DataSectorSize {
		return nil, fmt.Errorf("luks2: device of %d bytes is too small (data starts at %d)", size, DataOffset)
	}
	if len(opts.Label) > labelSize-1 {
		return nil, fmt.Errorf("luks2: label %q longer than %d bytes", opts.Label, labelSize-1)
	}
	if len(opts.Keyslots) == 0 || len(opts.Keyslots) > MaxKeyslots {
		return nil, fmt.Errorf("luks2: %d keyslots, want 1 to %d", len(opts.Keyslots), MaxKeyslots)
	}
	if opts.VolumeKey != nil && len(opts.VolumeKey) != VolumeKeySize {
		return nil, fmt.Errorf("luks2: volume key of %d bytes, want %d", len(opts.VolumeKey), VolumeKeySize)
	}
	digestIter := opts.DigestIterations
	if digestIter == 0 {
		digestIter = MinIterations
	}
	if digestIter < MinIterations {
		return nil, fmt.Errorf("luks2: digest iterations %d below %d", digestIter, MinIterations)
	}
	for i, ks := range opts.Keyslots {
		if len(ks.Passphrase) == 0 {
			return nil, fmt.Errorf("luks2: keyslot %d: empty passphrase", i)
		}
		if ks.Iterations < MinIterations {
			return nil, fmt.Errorf("luks2: keyslot %d: %d iterations, at least %d", i, ks.Iterations, MinIterations)
		}
		if ks.Priority < PriorityIgnore || ks.Priority > PriorityHigh {
			return nil, fmt.Errorf("luks2: keyslot %d: invalid priority %d", i, ks.Priority)
		}
	}

	read := func(what string, n int) ([]byte, error) {
		b := make([]byte, n)
		if _, err := io.ReadFull(rnd, b); err != nil {
			return nil, fmt.Errorf("luks2: random %s: %w", what, err)
		}
		return b, nil
	}
	uuid := opts.UUID
	if uuid == "" {
		b, err := read("uuid", 16)
		if err != nil {
			return nil, err
		}
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		uuid = fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	} else if !validUUID(uuid) {
		return nil, fmt.Errorf("luks2: uuid %q is not in the 8-4-4-4-12 hex form", uuid)
	}
	vk := opts.VolumeKey
	if vk == nil {
		var err error
		if vk, err = read("volume key", VolumeKeySize); err != nil {
			return nil, err
		}
	}
	h := &Header{UUID: uuid, Label: opts.Label, SeqID: 1, HeaderSize: HeaderSize, From: Primary}
	for i := range h.salts {
		s, err := read("header salt", hdrSaltSize)
		if err != nil {
			return nil, err
		}
		copy(h.salts[i][:], s)
	}
	digestSalt, err := read("digest salt", saltSize)
	if err != nil {
		return nil, err
	}
	const areaStart = 2 * HeaderSize
	m := &metadata{
		Keyslots: map[string]*keyslot{},
		Tokens:   map[string]json.RawMessage{},
		Segments: map[string]*segment{"0": {
			Type: "crypt", Offset: DataOffset, Size: dynamic, IVTweak: 0,
			Encryption: "aes-xts-plain64", SectorSize: DataSectorSize,
		}},
		Digests: map[string]*digest{"0": {
			Type: "pbkdf2", Keyslots: []string{}, Segments: []string{"0"}, Hash: "sha256",
			Iterations: digestIter, Salt: digestSalt,
		}},
		Config: config{JSONSize: HeaderSize - binHeaderSize, KeyslotsSize: DataOffset - areaStart},
	}
	d := m.Digests["0"]
	h2, _ := hashFunc("sha256")
	d.Digest = pbkdf2.Key(vk, digestSalt, digestIter, 32, h2)

	// Zero the keyslots area first so no earlier keyslot material survives next to ours and the
	// result does not depend on what the device held.
	zero := make([]byte, 1<<20)
	for off := int64(areaStart); off < DataOffset; off += int64(len(zero)) {
		n := min(int64(len(zero)), DataOffset-off)
		if _, err := dev.WriteAt(zero[:n], off); err != nil {
			return nil, fmt.Errorf("luks2: wipe keyslots area at offset %d: %w", off, err)
		}
	}
	for i, spec := range opts.Keyslots {
		ks, material, err := newKeyslot(spec, vk, areaStart+int64(i)*keyslotAreaSize, rnd)
		if err != nil {
			return nil, fmt.Errorf("luks2: keyslot %d: %w", i, err)
		}
		if _, err := dev.WriteAt(material, int64(ks.Area.Offset)); err != nil {
			return nil, fmt.Errorf("luks2: keyslot %d: write area at offset %d: %w", i, ks.Area.Offset, err)
		}
		id := strconv.Itoa(i)
		m.Keyslots[id] = ks
		d.Keyslots = append(d.Keyslots, id)
	}
	h.meta = m
	for i, t := range opts.Tokens {
		if err := validateToken(t, m); err != nil {
			return nil, fmt.Errorf("luks2: token %d: %w", i, err)
		}
		m.Tokens[strconv.Itoa(i)] = t
	}
	if err := m.validate(HeaderSize); err != nil {
		return nil, fmt.Errorf("luks2: internal error, formatted metadata invalid: %w", err)
	}
	if err := h.write(dev); err != nil {
		return nil, err
	}
	return h, nil
}

// newKeyslot derives the area key from the passphrase and returns the keyslot's metadata and
// its encrypted, AF-split copy of the volume key.
func newKeyslot(spec KeyslotSpec, vk []byte, offset int64, rnd io.Reader) (*keyslot, []byte, error) {
	salt := make([]byte, saltSize)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return nil, nil, fmt.Errorf("random salt: %w", err)
	}
	ks := &keyslot{
		Type:    "luks2",
		KeySize: len(vk),
		AF:      af{Type: "luks1", Stripes: afStripes, Hash: "sha256"},
		Area: area{Type: "raw", Offset: u64(offset), Size: keyslotAreaSize,
			Encryption: "aes-xts-plain64", KeySize: 64},
		KDF:      kdf{Type: "pbkdf2", Hash: "sha256", Iterations: spec.Iterations, Salt: salt},
		Priority: spec.Priority.onDisk(),
	}
	split, err := afSplit(vk, afStripes, ks.AF.Hash, rnd)
	if err != nil {
		return nil, nil, err
	}
	material := make([]byte, splitSectorsBytes(len(vk), afStripes))
	copy(material, split)
	areaKey, err := ks.KDF.derive(spec.Passphrase, ks.Area.KeySize)
	if err != nil {
		return nil, nil, err
	}
	if err := cryptArea(areaKey, material, true); err != nil {
		return nil, nil, err
	}
	return ks, material, nil
}

// AddToken stores token (a JSON object with "type", e.g. "ballast-tpm2", and "keyslots", the
// keyslot ids as strings) under the lowest free token id and rewrites both header copies with
// the next seqid. h must be the header as last read from or written to dev.
func AddToken(dev io.WriterAt, h *Header, token json.RawMessage) (int, error) {
	if err := validateToken(token, h.meta); err != nil {
		return -1, fmt.Errorf("luks2: token: %w", err)
	}
	id := -1
	for i := 0; i < MaxKeyslots; i++ {
		if _, used := h.meta.Tokens[strconv.Itoa(i)]; !used {
			id = i
			break
		}
	}
	if id < 0 {
		return -1, fmt.Errorf("luks2: all %d token ids are in use", MaxKeyslots)
	}
	sid := strconv.Itoa(id)
	h.meta.Tokens[sid] = append(json.RawMessage(nil), token...)
	h.SeqID++
	if err := h.write(dev); err != nil {
		delete(h.meta.Tokens, sid)
		h.SeqID--
		return -1, fmt.Errorf("luks2: add token %d: %w", id, err)
	}
	return id, nil
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
