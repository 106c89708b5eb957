package luks2

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// Binary header layout (all integers big-endian), from the LUKS2 specification.
const (
	offMagic     = 0   // 6 bytes
	offVersion   = 6   // uint16
	offHdrSize   = 8   // uint64, size of the header area incl. JSON
	offSeqID     = 16  // uint64
	offLabel     = 24  // 48 bytes
	offCsumAlg   = 72  // 32 bytes
	offSalt      = 104 // 64 bytes
	offUUID      = 168 // 40 bytes
	offSubsystem = 208 // 48 bytes
	offHdrOffset = 256 // uint64
	offCsum      = 448 // 64 bytes
	labelSize    = 48
	uuidSize     = 40
	csumSize     = 64
	hdrSaltSize  = 64
)

var (
	magicPrimary   = []byte("LUKS\xba\xbe")
	magicSecondary = []byte("SKUL\xba\xbe")
	// hdrSizes are the header area sizes the specification allows; the secondary header sits at
	// one of them, which is where Read looks for it when the primary cannot say.
	hdrSizes = []uint64{16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20}
)

// Header is a volume's LUKS2 metadata as read from (or written to) a device.
type Header struct {
	UUID      string
	Label     string
	Subsystem string
	SeqID     uint64
	// HeaderSize is the size of each header area (binary header and JSON) in bytes.
	HeaderSize int64
	// From is the copy the metadata was taken from.
	From Copy
	// Damage says what is wrong with the other copy (unreadable, bad checksum, older seqid), nil
	// when both copies are intact and agree. Writing the header (AddToken) rewrites both.
	Damage error

	meta *metadata
	// salts are the per-copy binary header salts, kept so a rewrite does not need randomness.
	salts [2][hdrSaltSize]byte
}

// Keyslot describes one keyslot for callers choosing or reporting; secrets stay inside.
type Keyslot struct {
	ID         int
	Priority   Priority
	KDF        string // "pbkdf2", "argon2i" or "argon2id"
	Iterations int    // pbkdf2 iterations, or argon2 time cost
	MemoryKiB  int    // argon2 only
	Threads    int    // argon2 only
}

// Segment describes the encrypted data area.
type Segment struct {
	Offset     int64  // bytes from the start of the device
	Size       int64  // bytes; -1 for "dynamic", up to the end of the device
	Cipher     string // dm-crypt cipher spec, e.g. "aes-xts-plain64"
	SectorSize int    // encryption unit in bytes
	IVTweak    uint64 // added to the IV sector number, in 512-byte sectors
}

// Keyslots lists the keyslots in id order.
func (h *Header) Keyslots() []Keyslot {
	var out []Keyslot
	for id, ks := range h.meta.Keyslots {
		n, _ := strconv.Atoi(id) // validated when read
		p, _ := priorityFromDisk(ks.Priority)
		k := Keyslot{ID: n, Priority: p, KDF: ks.KDF.Type}
		if ks.KDF.Type == "pbkdf2" {
			k.Iterations = ks.KDF.Iterations
		} else {
			k.Iterations, k.MemoryKiB, k.Threads = ks.KDF.Time, ks.KDF.Memory, ks.KDF.CPUs
		}
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b Keyslot) int { return a.ID - b.ID })
	return out
}

// Tokens returns the tokens by id, as the JSON stored in the header.
func (h *Header) Tokens() map[int]json.RawMessage {
	out := make(map[int]json.RawMessage, len(h.meta.Tokens))
	for id, raw := range h.meta.Tokens {
		n, _ := strconv.Atoi(id)
		out[n] = slices.Clone(raw)
	}
	return out
}

// Segment returns the data segment.
func (h *Header) Segment() Segment {
	s := h.meta.Segments["0"]
	return Segment{Offset: int64(s.Offset), Size: int64(s.Size), Cipher: s.Encryption, SectorSize: s.SectorSize, IVTweak: uint64(s.IVTweak)}
}

// DataOffset is where the encrypted data starts, in bytes from the start of the device.
func (h *Header) DataOffset() int64 { return int64(h.meta.Segments["0"].Offset) }

// JSON returns the metadata as this package would write it, e.g. for logs or debugging.
func (h *Header) JSON() ([]byte, error) { return json.Marshal(h.meta) }

// Read reads and verifies both header copies and returns the newest intact one. A damaged or
// stale copy does not fail Read as long as the other is good; Header.Damage says what was found.
func Read(dev io.ReaderAt) (*Header, error) {
	prim, perr := readCopy(dev, 0, Primary)
	// Where the secondary is: after the primary's area if the primary's binary header says how
	// big that is, else at any offset the specification allows.
	var offsets []uint64
	if prim != nil {
		offsets = append(offsets, uint64(prim.HeaderSize))
	} else if hs, ok := peekHdrSize(dev); ok {
		offsets = append(offsets, hs)
	}
	for _, o := range hdrSizes {
		if !slices.Contains(offsets, o) {
			offsets = append(offsets, o)
		}
	}
	var sec *Header
	serr := errors.New("no secondary header found at any of the offsets LUKS2 allows")
	for _, off := range offsets {
		if !hasMagic(dev, int64(off), magicSecondary) {
			continue
		}
		sec, serr = readCopy(dev, off, Secondary)
		break
	}
	switch {
	case prim == nil && sec == nil:
		return nil, fmt.Errorf("luks2: no valid header: %w", errors.Join(perr, serr))
	case sec == nil:
		prim.Damage = serr
		prim.salts[Secondary] = prim.salts[Primary]
		return prim, nil
	case prim == nil:
		sec.Damage = perr
		sec.salts[Primary] = sec.salts[Secondary]
		return sec, nil
	}
	prim.salts[Secondary] = sec.salts[Secondary]
	if sec.SeqID > prim.SeqID {
		sec.Damage = fmt.Errorf("luks2: primary header is stale (seqid %d, secondary %d)", prim.SeqID, sec.SeqID)
		sec.salts = prim.salts
		return sec, nil
	}
	if sec.SeqID < prim.SeqID {
		prim.Damage = fmt.Errorf("luks2: secondary header is stale (seqid %d, primary %d)", sec.SeqID, prim.SeqID)
	} else if prim.HeaderSize != sec.HeaderSize || prim.UUID != sec.UUID {
		prim.Damage = fmt.Errorf("luks2: secondary header (uuid %s, size %d) differs from the primary with the same seqid", sec.UUID, sec.HeaderSize)
	}
	return prim, nil
}

func hasMagic(dev io.ReaderAt, off int64, magic []byte) bool {
	b := make([]byte, len(magic))
	_, err := dev.ReadAt(b, off)
	return err == nil && bytes.Equal(b, magic)
}

// peekHdrSize reads the primary's hdr_size field when the primary failed for another reason, so
// a primary with a bad checksum still tells where the secondary of a non-default layout is.
func peekHdrSize(dev io.ReaderAt) (uint64, bool) {
	b := make([]byte, 8)
	if _, err := dev.ReadAt(b, offHdrSize); err != nil {
		return 0, false
	}
	hs := binary.BigEndian.Uint64(b)
	return hs, slices.Contains(hdrSizes, hs)
}

// readCopy reads and verifies the header copy at off.
func readCopy(dev io.ReaderAt, off uint64, which Copy) (*Header, error) {
	fail := func(format string, args ...any) (*Header, error) {
		return nil, fmt.Errorf("luks2: %s header at offset %d: %s", which, off, fmt.Sprintf(format, args...))
	}
	bin := make([]byte, binHeaderSize)
	if _, err := dev.ReadAt(bin, int64(off)); err != nil {
		return fail("read: %v", err)
	}
	magic := magicPrimary
	if which == Secondary {
		magic = magicSecondary
	}
	if !bytes.Equal(bin[offMagic:offMagic+6], magic) {
		return fail("bad magic %q", bin[offMagic:offMagic+6])
	}
	if v := binary.BigEndian.Uint16(bin[offVersion:]); v != 2 {
		return fail("version %d, not 2", v)
	}
	hdrSize := binary.BigEndian.Uint64(bin[offHdrSize:])
	if !slices.Contains(hdrSizes, hdrSize) {
		return fail("hdr_size %d is not one LUKS2 allows", hdrSize)
	}
	if ho := binary.BigEndian.Uint64(bin[offHdrOffset:]); ho != off {
		return fail("hdr_offset %d does not match where it was found", ho)
	}
	if which == Secondary && off != hdrSize {
		return fail("hdr_size %d does not match its offset", hdrSize)
	}
	if alg := cString(bin[offCsumAlg : offCsumAlg+32]); alg != "sha256" {
		return fail("unsupported checksum algorithm %q", alg)
	}
	full := make([]byte, hdrSize)
	copy(full, bin)
	if _, err := dev.ReadAt(full[binHeaderSize:], int64(off)+binHeaderSize); err != nil {
		return fail("read JSON area: %v", err)
	}
	want := slices.Clone(full[offCsum : offCsum+sha256.Size])
	if sum := checksum(full); subtle.ConstantTimeCompare(sum, want) != 1 {
		return fail("checksum mismatch")
	}
	m, err := parseMetadata(full[binHeaderSize:], hdrSize)
	if err != nil {
		return fail("%v", err)
	}
	h := &Header{
		UUID:       cString(bin[offUUID : offUUID+uuidSize]),
		Label:      cString(bin[offLabel : offLabel+labelSize]),
		Subsystem:  cString(bin[offSubsystem : offSubsystem+48]),
		SeqID:      binary.BigEndian.Uint64(bin[offSeqID:]),
		HeaderSize: int64(hdrSize),
		From:       which,
		meta:       m,
	}
	copy(h.salts[which][:], bin[offSalt:offSalt+hdrSaltSize])
	return h, nil
}

// checksum is sha256 over the whole header area with the checksum field taken as zeros.
func checksum(area []byte) []byte {
	d := sha256.New()
	d.Write(area[:offCsum])
	d.Write(make([]byte, csumSize))
	d.Write(area[offCsum+csumSize:])
	return d.Sum(nil)
}

// encodeCopy lays out one header area around the already encoded JSON.
func (h *Header) encodeCopy(which Copy, js []byte) ([]byte, error) {
	hs := uint64(h.HeaderSize)
	if uint64(len(js)) >= hs-binHeaderSize {
		// One byte stays free for the terminating NUL.
		return nil, fmt.Errorf("luks2: JSON metadata of %d bytes does not fit the %d-byte JSON area", len(js), hs-binHeaderSize)
	}
	area := make([]byte, hs)
	off := uint64(0)
	magic := magicPrimary
	if which == Secondary {
		off, magic = hs, magicSecondary
	}
	copy(area[offMagic:], magic)
	binary.BigEndian.PutUint16(area[offVersion:], 2)
	binary.BigEndian.PutUint64(area[offHdrSize:], hs)
	binary.BigEndian.PutUint64(area[offSeqID:], h.SeqID)
	copy(area[offLabel:offLabel+labelSize-1], h.Label)
	copy(area[offCsumAlg:], "sha256")
	copy(area[offSalt:], h.salts[which][:])
	copy(area[offUUID:offUUID+uuidSize-1], h.UUID)
	copy(area[offSubsystem:offSubsystem+47], h.Subsystem)
	binary.BigEndian.PutUint64(area[offHdrOffset:], off)
	copy(area[binHeaderSize:], js)
	copy(area[offCsum:], checksum(area))
	return area, nil
}

// write writes both header copies. The secondary goes first: until the primary is rewritten too
// the old primary stays intact, and Read takes whichever valid copy has the higher seqid, so a
// power cut at any point leaves one complete header, old or new.
func (h *Header) write(dev io.WriterAt) error {
	js, err := json.Marshal(h.meta)
	if err != nil {
		return fmt.Errorf("luks2: encode JSON metadata: %w", err)
	}
	for _, which := range []Copy{Secondary, Primary} {
		area, err := h.encodeCopy(which, js)
		if err != nil {
			return err
		}
		off := int64(0)
		if which == Secondary {
			off = h.HeaderSize
		}
		if _, err := dev.WriteAt(area, off); err != nil {
			return fmt.Errorf("luks2: write %s header at offset %d: %w", which, off, err)
		}
	}
	h.Damage = nil
	return nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
