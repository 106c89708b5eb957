// Package pcr does TPM PCR arithmetic for the sha256 bank: extending, and predicting the PCR 11
// value systemd-stub 252 leaves behind for a unified kernel image, so that a policy for a UKI can
// be signed before it ever boots.
package pcr

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Size is the length of a sha256-bank PCR value.
const Size = sha256.Size

// Value is a sha256-bank PCR value or a sha256 digest to extend one with. A fixed-size array
// rather than a slice, so that a value of the wrong length cannot exist.
type Value [Size]byte

// Zero is the value every PCR from 0 to 16 and 23 holds after a TPM reset, before anything was
// extended into it.
var Zero Value

// String is the lower-case hex form systemd-measure and tpm2_pcrread print.
func (v Value) String() string { return hex.EncodeToString(v[:]) }

// Bytes returns a copy of the value as a slice, the form the TPM commands take.
func (v Value) Bytes() []byte { return append([]byte(nil), v[:]...) }

// FromBytes checks that b is a whole sha256-bank value.
func FromBytes(b []byte) (Value, error) {
	var v Value
	if len(b) != Size {
		return v, fmt.Errorf("pcr: value is %d bytes, a sha256 PCR is %d", len(b), Size)
	}
	copy(v[:], b)
	return v, nil
}

// ParseHex reads a value in the hex form String writes.
func ParseHex(s string) (Value, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return Value{}, fmt.Errorf("pcr: %q is not hex: %w", s, err)
	}
	return FromBytes(b)
}

// Extend is what TPM2_PCR_Extend does to a PCR: new = sha256(old || digest).
func Extend(old, digest Value) Value {
	h := sha256.New()
	h.Write(old[:])
	h.Write(digest[:])
	var v Value
	copy(v[:], h.Sum(nil))
	return v
}

// ExtendData extends old with the sha256 digest of data, the way a measurement of data is made.
func ExtendData(old Value, data []byte) Value {
	return Extend(old, sha256.Sum256(data))
}
