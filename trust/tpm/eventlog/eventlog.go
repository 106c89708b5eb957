// Package eventlog reads the TCG PC Client crypto-agile firmware event log
// (/sys/kernel/security/tpm0/binary_bios_measurements), replays it into PCR values and
// summarizes what was measured, so the owner can see why PCR 7 or another PCR has the value it
// has, and whether the log accounts for the TPM's PCRs at all.
package eventlog

import (
	"bytes"
	"crypto"
	_ "crypto/sha1" // the hashes a log's banks may use
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/binary"
	"fmt"
)

// Path is where Linux exposes the firmware's log.
const Path = "/sys/kernel/security/tpm0/binary_bios_measurements"

// Alg is a TPM_ALG_ID naming a PCR bank.
type Alg uint16

// Banks a log may carry.
const (
	SHA1   Alg = 0x0004
	SHA256 Alg = 0x000B
	SHA384 Alg = 0x000C
	SHA512 Alg = 0x000D
	SM3    Alg = 0x0012
)

func (a Alg) String() string {
	switch a {
	case SHA1:
		return "sha1"
	case SHA256:
		return "sha256"
	case SHA384:
		return "sha384"
	case SHA512:
		return "sha512"
	case SM3:
		return "sm3_256"
	}
	return fmt.Sprintf("alg-%#04x", uint16(a))
}

func (a Alg) hash() (crypto.Hash, bool) {
	switch a {
	case SHA1:
		return crypto.SHA1, true
	case SHA256:
		return crypto.SHA256, true
	case SHA384:
		return crypto.SHA384, true
	case SHA512:
		return crypto.SHA512, true
	}
	return 0, false
}

// Algorithm is one bank the Spec ID event declares, with its digest size.
type Algorithm struct {
	ID   Alg
	Size int
}

// SpecID is the content of the first event, which says the log is crypto-agile and how long each
// bank's digests are.
type SpecID struct {
	PlatformClass uint32
	Major, Minor  uint8
	Errata        uint8
	UintnSize     uint8
	Algorithms    []Algorithm
}

// Event is one TCG_PCR_EVENT2.
type Event struct {
	// Index counts from 0 at the first event after the Spec ID header event.
	Index int
	// Offset is where the event starts in the log.
	Offset  int
	PCR     int
	Type    EventType
	Digests map[Alg][]byte
	Data    []byte
}

// Log is a parsed event log.
type Log struct {
	SpecID SpecID
	Events []Event
}

// Limits against a corrupt or hostile log: real logs have a few hundred events of a few KiB.
const (
	maxAlgorithms = 16
	maxDigest     = 64
	maxPCR        = 23
)

type reader struct {
	b   []byte
	off int
}

func (r *reader) take(n int, what string) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.off {
		return nil, fmt.Errorf("%s: needs %d bytes at offset %d, only %d left", what, n, r.off, len(r.b)-r.off)
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s, nil
}

func (r *reader) u8(what string) (uint8, error) {
	b, err := r.take(1, what)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (r *reader) u16(what string) (uint16, error) {
	b, err := r.take(2, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (r *reader) u32(what string) (uint32, error) {
	b, err := r.take(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

var specIDSignature = []byte("Spec ID Event03\x00")

// Parse reads a crypto-agile log. Errors name the event and the offset where the log stops
// making sense.
func Parse(b []byte) (Log, error) {
	r := &reader{b: b}
	var log Log
	// The header event is in the old SHA1-only TCG_PCClientPCREvent format, so that pre-agile
	// parsers can skip it.
	hdr := func() error {
		pcrIdx, err := r.u32("PCR index")
		if err != nil {
			return err
		}
		typ, err := r.u32("event type")
		if err != nil {
			return err
		}
		if pcrIdx != 0 || EventType(typ) != EVNoAction {
			return fmt.Errorf("first event is PCR %d type %s, want PCR 0 EV_NO_ACTION (is this a SHA1-only log?)", pcrIdx, EventType(typ))
		}
		if _, err := r.take(20, "SHA1 digest"); err != nil {
			return err
		}
		size, err := r.u32("event size")
		if err != nil {
			return err
		}
		if size > 1<<16 {
			return fmt.Errorf("Spec ID event claims %d bytes", size)
		}
		data, err := r.take(int(size), "Spec ID event data")
		if err != nil {
			return err
		}
		log.SpecID, err = parseSpecID(data)
		return err
	}
	if err := hdr(); err != nil {
		return Log{}, fmt.Errorf("eventlog: header event at offset 0: %w", err)
	}
	sizes := map[Alg]int{}
	for _, a := range log.SpecID.Algorithms {
		sizes[a.ID] = a.Size
	}
	for i := 0; r.off < len(b); i++ {
		start := r.off
		// Some firmware pads the log's buffer with 0xff or zeros after the last event.
		if rest := b[start:]; allBytes(rest, 0xff) || allBytes(rest, 0) {
			break
		}
		e, err := parseEvent(r, sizes)
		if err != nil {
			return Log{}, fmt.Errorf("eventlog: event %d at offset %d: %w", i, start, err)
		}
		e.Index, e.Offset = i, start
		log.Events = append(log.Events, e)
	}
	return log, nil
}

func allBytes(b []byte, v byte) bool {
	for _, c := range b {
		if c != v {
			return false
		}
	}
	return true
}

func parseSpecID(data []byte) (SpecID, error) {
	r := &reader{b: data}
	var s SpecID
	sig, err := r.take(16, "Spec ID signature")
	if err != nil {
		return s, err
	}
	if !bytes.Equal(sig, specIDSignature) {
		return s, fmt.Errorf("signature %q, want %q: not a crypto-agile log", bytes.TrimRight(sig, "\x00"), "Spec ID Event03")
	}
	if s.PlatformClass, err = r.u32("platform class"); err != nil {
		return s, err
	}
	if s.Minor, err = r.u8("spec version minor"); err != nil {
		return s, err
	}
	if s.Major, err = r.u8("spec version major"); err != nil {
		return s, err
	}
	if s.Errata, err = r.u8("spec errata"); err != nil {
		return s, err
	}
	if s.UintnSize, err = r.u8("uintn size"); err != nil {
		return s, err
	}
	n, err := r.u32("number of algorithms")
	if err != nil {
		return s, err
	}
	if n == 0 || n > maxAlgorithms {
		return s, fmt.Errorf("Spec ID declares %d algorithms", n)
	}
	for j := uint32(0); j < n; j++ {
		id, err := r.u16("algorithm id")
		if err != nil {
			return s, err
		}
		size, err := r.u16("digest size")
		if err != nil {
			return s, err
		}
		if size == 0 || size > maxDigest {
			return s, fmt.Errorf("algorithm %s has digest size %d", Alg(id), size)
		}
		if h, ok := Alg(id).hash(); ok && h.Size() != int(size) {
			return s, fmt.Errorf("algorithm %s declared with digest size %d, want %d", Alg(id), size, h.Size())
		}
		s.Algorithms = append(s.Algorithms, Algorithm{ID: Alg(id), Size: int(size)})
	}
	return s, nil
}

func parseEvent(r *reader, sizes map[Alg]int) (Event, error) {
	var e Event
	pcrIdx, err := r.u32("PCR index")
	if err != nil {
		return e, err
	}
	// EV_NO_ACTION events may use PCR index -1 in some logs; anything else must be a PCR.
	typ, err := r.u32("event type")
	if err != nil {
		return e, err
	}
	e.Type = EventType(typ)
	if pcrIdx > maxPCR && e.Type != EVNoAction {
		return e, fmt.Errorf("PCR index %d", pcrIdx)
	}
	e.PCR = int(pcrIdx)
	if pcrIdx > maxPCR {
		e.PCR = -1
	}
	count, err := r.u32("digest count")
	if err != nil {
		return e, err
	}
	if count > uint32(len(sizes)) {
		return e, fmt.Errorf("%d digests, the header declares %d algorithms", count, len(sizes))
	}
	e.Digests = make(map[Alg][]byte, count)
	for j := uint32(0); j < count; j++ {
		id, err := r.u16("digest algorithm")
		if err != nil {
			return e, err
		}
		size, ok := sizes[Alg(id)]
		if !ok {
			return e, fmt.Errorf("digest %d uses algorithm %s, which the header does not declare", j, Alg(id))
		}
		d, err := r.take(size, Alg(id).String()+" digest")
		if err != nil {
			return e, err
		}
		if _, dup := e.Digests[Alg(id)]; dup {
			return e, fmt.Errorf("two %s digests", Alg(id))
		}
		e.Digests[Alg(id)] = d
	}
	size, err := r.u32("event size")
	if err != nil {
		return e, err
	}
	if int64(size) > int64(len(r.b)-r.off) {
		return e, fmt.Errorf("event data of %d bytes at offset %d, only %d left", size, r.off, len(r.b)-r.off)
	}
	e.Data, _ = r.take(int(size), "event data")
	return e, nil
}
