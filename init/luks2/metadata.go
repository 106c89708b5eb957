package luks2

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// The JSON metadata. LUKS2 writes byte offsets and sizes as decimal strings (they may exceed what
// a JSON number holds exactly) and small counts as numbers; the types below keep that apart.

type metadata struct {
	Keyslots map[string]*keyslot        `json:"keyslots"`
	Tokens   map[string]json.RawMessage `json:"tokens"`
	Segments map[string]*segment        `json:"segments"`
	Digests  map[string]*digest         `json:"digests"`
	Config   config                     `json:"config"`
}

type keyslot struct {
	Type     string `json:"type"`
	KeySize  int    `json:"key_size"`
	AF       af     `json:"af"`
	Area     area   `json:"area"`
	KDF      kdf    `json:"kdf"`
	Priority *int   `json:"priority,omitempty"`
}

type af struct {
	Type    string `json:"type"`
	Stripes int    `json:"stripes"`
	Hash    string `json:"hash"`
}

type area struct {
	Type       string `json:"type"`
	Offset     u64    `json:"offset"`
	Size       u64    `json:"size"`
	Encryption string `json:"encryption"`
	KeySize    int    `json:"key_size"`
}

type kdf struct {
	Type string `json:"type"`
	// pbkdf2
	Hash       string `json:"hash,omitempty"`
	Iterations int    `json:"iterations,omitempty"`
	// argon2i, argon2id
	Time   int    `json:"time,omitempty"`
	Memory int    `json:"memory,omitempty"` // KiB
	CPUs   int    `json:"cpus,omitempty"`
	Salt   []byte `json:"salt"` // base64, as encoding/json writes []byte
}

type segment struct {
	Type       string          `json:"type"`
	Offset     u64             `json:"offset"`
	Size       segSize         `json:"size"`
	IVTweak    u64             `json:"iv_tweak"`
	Encryption string          `json:"encryption"`
	SectorSize int             `json:"sector_size"`
	Integrity  json.RawMessage `json:"integrity,omitempty"`
	Flags      []string        `json:"flags,omitempty"`
}

type digest struct {
	Type       string   `json:"type"`
	Keyslots   []string `json:"keyslots"`
	Segments   []string `json:"segments"`
	Hash       string   `json:"hash"`
	Iterations int      `json:"iterations"`
	Salt       []byte   `json:"salt"`
	Digest     []byte   `json:"digest"`
}

type config struct {
	JSONSize     u64           `json:"json_size"`
	KeyslotsSize u64           `json:"keyslots_size"`
	Flags        []string      `json:"flags,omitempty"`
	Requirements *requirements `json:"requirements,omitempty"`
}

type requirements struct {
	Mandatory []string `json:"mandatory,omitempty"`
}

// u64 is an unsigned 64-bit integer written as a JSON string of decimal digits.
type u64 uint64

func (v u64) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, strconv.FormatUint(uint64(v), 10)), nil
}

func (v *u64) UnmarshalJSON(b []byte) error {
	n, err := parseDecimalString(b)
	if err != nil {
		return err
	}
	*v = u64(n)
	return nil
}

// parseDecimalString accepts a JSON string holding only decimal digits: no sign, no spaces, no
// escapes, which strconv alone would let through ("+1") or json would decode ("\u0031").
func parseDecimalString(b []byte) (uint64, error) {
	if len(b) < 3 || b[0] != '"' || b[len(b)-1] != '"' {
		return 0, fmt.Errorf("%.40s is not a decimal string", b)
	}
	s := b[1 : len(b)-1]
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%.40s is not a decimal string", b)
		}
	}
	n, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%.40s: %w", b, err)
	}
	return n, nil
}

// segSize is a segment's size: bytes, or "dynamic" (up to the end of the device), stored as -1.
type segSize int64

const dynamic segSize = -1

func (s segSize) MarshalJSON() ([]byte, error) {
	if s == dynamic {
		return []byte(`"dynamic"`), nil
	}
	return u64(s).MarshalJSON()
}

func (s *segSize) UnmarshalJSON(b []byte) error {
	if string(b) == `"dynamic"` {
		*s = dynamic
		return nil
	}
	n, err := parseDecimalString(b)
	if err != nil {
		return err
	}
	if n > math.MaxInt64 {
		return fmt.Errorf("segment size %d too large", n)
	}
	*s = segSize(n)
	return nil
}

// Supported algorithms. Anything else is refused when reading, so Unlock never meets it.
var (
	hashSizes        = map[string]int{"sha1": 20, "sha256": 32, "sha512": 64}
	areaEncryptions  = map[string]bool{"aes-xts-plain64": true}
	validSectorSizes = []int{512, 1024, 2048, 4096}
)

const (
	// Limits on what a header may ask for, so a hostile one cannot make Unlock allocate or spin
	// without bound. They are far above anything cryptsetup writes.
	maxSplitSize   = 16 << 20 // key_size * stripes
	maxArgonMemory = 4 << 20  // KiB, cryptsetup's own ceiling
	maxArgonCPUs   = 255      // x/crypto/argon2 takes a uint8
)

// parseMetadata decodes and checks the JSON area of a header whose area is hdrSize bytes.
func parseMetadata(jsonArea []byte, hdrSize uint64) (*metadata, error) {
	if i := bytes.IndexByte(jsonArea, 0); i >= 0 {
		jsonArea = jsonArea[:i]
	}
	var m metadata
	if err := json.Unmarshal(jsonArea, &m); err != nil {
		return nil, fmt.Errorf("JSON metadata: %w", err)
	}
	if err := m.validate(hdrSize); err != nil {
		return nil, err
	}
	return &m, nil
}

func parseID(kind, id string) (int, error) {
	n, err := strconv.Atoi(id)
	if err != nil || n < 0 || n >= MaxKeyslots || strconv.Itoa(n) != id {
		return 0, fmt.Errorf("%s id %q is not a number from 0 to %d", kind, id, MaxKeyslots-1)
	}
	return n, nil
}

// validate checks the metadata as far as this package relies on it: every offset used later is
// inside the areas config declares, and every algorithm named is one Unlock implements.
func (m *metadata) validate(hdrSize uint64) error {
	if m.Keyslots == nil || m.Segments == nil || m.Digests == nil || m.Tokens == nil {
		return fmt.Errorf("JSON metadata lacks keyslots, segments, digests or tokens")
	}
	c := m.Config
	if uint64(c.JSONSize) != hdrSize-binHeaderSize {
		return fmt.Errorf("config: json_size %d does not match the %d-byte header area", c.JSONSize, hdrSize)
	}
	if c.KeyslotsSize%binHeaderSize != 0 || uint64(c.KeyslotsSize) > math.MaxInt64/2 {
		return fmt.Errorf("config: keyslots_size %d is not a multiple of 4096", c.KeyslotsSize)
	}
	if c.Requirements != nil && len(c.Requirements.Mandatory) > 0 {
		return fmt.Errorf("config: unsupported mandatory requirements %q (e.g. an unfinished reencryption)", c.Requirements.Mandatory)
	}
	areaStart := 2 * hdrSize
	areaEnd := areaStart + uint64(c.KeyslotsSize)

	for id, ks := range m.Keyslots {
		if _, err := parseID("keyslot", id); err != nil {
			return err
		}
		if ks == nil {
			return fmt.Errorf("keyslot %s: null", id)
		}
		if err := ks.validate(areaStart, areaEnd); err != nil {
			return fmt.Errorf("keyslot %s: %w", id, err)
		}
	}
	for id, s := range m.Segments {
		if id != "0" {
			return fmt.Errorf("segment %s: only a single segment 0 is supported (is a reencryption in progress?)", id)
		}
		if s == nil {
			return fmt.Errorf("segment %s: null", id)
		}
		if err := s.validate(areaEnd); err != nil {
			return fmt.Errorf("segment %s: %w", id, err)
		}
	}
	if m.Segments["0"] == nil {
		return fmt.Errorf("no segment 0")
	}
	covered := false
	for id, d := range m.Digests {
		if _, err := parseID("digest", id); err != nil {
			return err
		}
		if d == nil {
			return fmt.Errorf("digest %s: null", id)
		}
		if err := d.validate(m); err != nil {
			return fmt.Errorf("digest %s: %w", id, err)
		}
		covered = covered || slices.Contains(d.Segments, "0")
	}
	if !covered {
		return fmt.Errorf("no digest covers segment 0")
	}
	for id := range m.Keyslots {
		if m.digestFor(id) == nil {
			return fmt.Errorf("keyslot %s: no digest covers it", id)
		}
	}
	for id, raw := range m.Tokens {
		if _, err := parseID("token", id); err != nil {
			return err
		}
		if err := validateToken(raw, m); err != nil {
			return fmt.Errorf("token %s: %w", id, err)
		}
	}
	return nil
}

func (ks *keyslot) validate(areaStart, areaEnd uint64) error {
	if ks.Type != "luks2" {
		return fmt.Errorf("unsupported keyslot type %q", ks.Type)
	}
	if ks.KeySize != 32 && ks.KeySize != 64 {
		return fmt.Errorf("key_size %d is not 32 or 64", ks.KeySize)
	}
	if _, err := priorityFromDisk(ks.Priority); err != nil {
		return err
	}
	if ks.AF.Type != "luks1" {
		return fmt.Errorf("unsupported anti-forensic splitter %q", ks.AF.Type)
	}
	if _, ok := hashSizes[ks.AF.Hash]; !ok {
		return fmt.Errorf("unsupported af hash %q", ks.AF.Hash)
	}
	if ks.AF.Stripes < 1 || ks.AF.Stripes > maxSplitSize/ks.KeySize {
		return fmt.Errorf("af stripes %d out of range", ks.AF.Stripes)
	}
	a := ks.Area
	if a.Type != "raw" {
		return fmt.Errorf("unsupported area type %q", a.Type)
	}
	if !areaEncryptions[a.Encryption] {
		return fmt.Errorf("unsupported area encryption %q", a.Encryption)
	}
	if a.KeySize != 32 && a.KeySize != 64 {
		return fmt.Errorf("area key_size %d is not 32 or 64", a.KeySize)
	}
	off, size := uint64(a.Offset), uint64(a.Size)
	if off%areaSectorSize != 0 || off < areaStart || off > areaEnd || size > areaEnd-off {
		return fmt.Errorf("area at offset %d size %d is outside the keyslots area %d-%d", off, size, areaStart, areaEnd)
	}
	if need := splitSectorsBytes(ks.KeySize, ks.AF.Stripes); size < uint64(need) {
		return fmt.Errorf("area size %d smaller than the %d bytes of %d stripes", size, need, ks.AF.Stripes)
	}
	return ks.KDF.validate()
}

// splitSectorsBytes is the AF-split key material rounded up to whole area sectors: what is
// encrypted and stored in a keyslot area.
func splitSectorsBytes(keySize, stripes int) int {
	return (keySize*stripes + areaSectorSize - 1) / areaSectorSize * areaSectorSize
}

func (k *kdf) validate() error {
	if len(k.Salt) == 0 {
		return fmt.Errorf("kdf has no salt")
	}
	switch k.Type {
	case "pbkdf2":
		if _, ok := hashSizes[k.Hash]; !ok {
			return fmt.Errorf("unsupported pbkdf2 hash %q", k.Hash)
		}
		if k.Iterations < 1 {
			return fmt.Errorf("pbkdf2 iterations %d", k.Iterations)
		}
	case "argon2i", "argon2id":
		if k.Time < 1 || k.Memory < 8 || k.Memory > maxArgonMemory || k.CPUs < 1 || k.CPUs > maxArgonCPUs {
			return fmt.Errorf("%s parameters time %d memory %d cpus %d out of range", k.Type, k.Time, k.Memory, k.CPUs)
		}
	default:
		return fmt.Errorf("unsupported kdf %q", k.Type)
	}
	return nil
}

func (s *segment) validate(metadataEnd uint64) error {
	if s.Type != "crypt" {
		return fmt.Errorf("unsupported segment type %q", s.Type)
	}
	if s.Encryption != "aes-xts-plain64" {
		return fmt.Errorf("unsupported encryption %q", s.Encryption)
	}
	if !slices.Contains(validSectorSizes, s.SectorSize) {
		return fmt.Errorf("sector_size %d is not 512, 1024, 2048 or 4096", s.SectorSize)
	}
	if len(s.Integrity) > 0 && string(s.Integrity) != "null" {
		return fmt.Errorf("integrity protection is not supported")
	}
	off := uint64(s.Offset)
	if off%uint64(s.SectorSize) != 0 || off < metadataEnd || off > math.MaxInt64 {
		return fmt.Errorf("offset %d is not a sector_size multiple after the metadata (%d)", off, metadataEnd)
	}
	if s.Size != dynamic && (s.Size <= 0 || s.Size%segSize(s.SectorSize) != 0) {
		return fmt.Errorf("size %d is not a positive multiple of sector_size", s.Size)
	}
	// dm-crypt takes iv_offset in 512-byte sectors; a tweak too large for plain64 is nonsense.
	if uint64(s.IVTweak) > math.MaxInt64 {
		return fmt.Errorf("iv_tweak %d too large", s.IVTweak)
	}
	return nil
}

func (d *digest) validate(m *metadata) error {
	if d.Type != "pbkdf2" {
		return fmt.Errorf("unsupported digest type %q", d.Type)
	}
	n, ok := hashSizes[d.Hash]
	if !ok {
		return fmt.Errorf("unsupported digest hash %q", d.Hash)
	}
	if d.Iterations < 1 || len(d.Salt) == 0 || len(d.Digest) == 0 || len(d.Digest) > n {
		return fmt.Errorf("iterations %d, salt %d bytes, digest %d bytes are not a usable pbkdf2 digest", d.Iterations, len(d.Salt), len(d.Digest))
	}
	for _, k := range d.Keyslots {
		if m.Keyslots[k] == nil {
			return fmt.Errorf("names keyslot %q, which does not exist", k)
		}
	}
	for _, s := range d.Segments {
		if m.Segments[s] == nil {
			return fmt.Errorf("names segment %q, which does not exist", s)
		}
	}
	return nil
}

// digestFor returns the digest that verifies keyslot id's key, or nil.
func (m *metadata) digestFor(id string) *digest {
	// Map order is random; pick the lowest digest id so the choice is stable.
	ids := make([]string, 0, len(m.Digests))
	for did := range m.Digests {
		ids = append(ids, did)
	}
	slices.SortFunc(ids, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
	for _, did := range ids {
		if slices.Contains(m.Digests[did].Keyslots, id) {
			return m.Digests[did]
		}
	}
	return nil
}

// tokenHead is what LUKS2 requires of every token; the rest belongs to the token's type.
type tokenHead struct {
	Type     *string   `json:"type"`
	Keyslots *[]string `json:"keyslots"`
}

func validateToken(raw json.RawMessage, m *metadata) error {
	var h tokenHead
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("not a JSON object with type and keyslots: %w", err)
	}
	if h.Type == nil || *h.Type == "" || h.Keyslots == nil {
		return fmt.Errorf("lacks type or keyslots")
	}
	for _, k := range *h.Keyslots {
		if m.Keyslots[k] == nil {
			return fmt.Errorf("names keyslot %q, which does not exist", k)
		}
	}
	return nil
}
