package luks2

import (
	"fmt"
	"io"
	"strings"
)

// Recovery keys look like systemd-cryptenroll's: 32 random bytes in "modhex", whose 16 letters
// sit in the same places on most Latin keyboard layouts, so a key typed on a console with the
// wrong keymap still comes out right; 64 letters in 8 dash-separated groups of 8.
const (
	modhex           = "cbdefghijklnrtuv"
	recoveryKeyBytes = 32
	recoveryGroup    = 8
)

// NewRecoveryKey returns a new recovery key as the user types it, which is also the keyslot
// passphrase (the formatted string's bytes), and the 32 random bytes it encodes.
func NewRecoveryKey(rand io.Reader) (string, []byte, error) {
	raw := make([]byte, recoveryKeyBytes)
	if _, err := io.ReadFull(rand, raw); err != nil {
		return "", nil, fmt.Errorf("luks2: random recovery key: %w", err)
	}
	return formatRecoveryKey(raw), raw, nil
}

func formatRecoveryKey(raw []byte) string {
	var b strings.Builder
	for i, c := range raw {
		if i > 0 && i%(recoveryGroup/2) == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(modhex[c>>4])
		b.WriteByte(modhex[c&0xf])
	}
	return b.String()
}

// ParseRecoveryKey normalises a typed recovery key: case, surrounding space, and dashes or
// spaces between (or missing between) the groups do not matter. It returns the canonical form,
// which is the passphrase to unlock with, and the bytes it encodes.
func ParseRecoveryKey(s string) (string, []byte, error) {
	var digits []byte
	for pos, c := range strings.ToLower(strings.TrimSpace(s)) {
		if c == '-' || c == ' ' {
			continue
		}
		i := strings.IndexRune(modhex, c)
		if i < 0 {
			// The position, not the character: the rest of the key may be right and is secret.
			return "", nil, fmt.Errorf("luks2: recovery key: character at position %d is not one of %s", pos, modhex)
		}
		digits = append(digits, byte(i))
	}
	if len(digits) != 2*recoveryKeyBytes {
		return "", nil, fmt.Errorf("luks2: recovery key has %d letters, want %d", len(digits), 2*recoveryKeyBytes)
	}
	raw := make([]byte, recoveryKeyBytes)
	for i := range raw {
		raw[i] = digits[2*i]<<4 | digits[2*i+1]
	}
	return formatRecoveryKey(raw), raw, nil
}
