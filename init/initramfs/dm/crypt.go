package dm

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Crypt describes a dm-crypt mapping in typed fields, e.g. the data segment of a LUKS2 volume
// (see init/luks2's DMCrypt for where the values come from).
type Crypt struct {
	Cipher string // e.g. "aes-xts-plain64"
	// Key is the raw encryption key, passed to the kernel in hex inside the table. KeyringKey
	// replaces it when set.
	Key []byte
	// KeyringKey names a key already in the kernel keyring instead, "<size>:<logon|user>:<desc>"
	// (e.g. "64:logon:ballast:local"), so the key never appears in the table; the caller must
	// have added it with add_key(2).
	KeyringKey string
	IVOffset   uint64 // added to the sector number for the IV, in 512-byte sectors
	Dev        string // "major:minor" or a device path
	Offset     uint64 // where the encrypted data starts on Dev, in 512-byte sectors
	// SectorSize is the encryption unit in bytes (512-4096, a power of two); 0 means 512.
	SectorSize uint32
	// IVLargeSectors counts the IV in SectorSize units instead of 512-byte sectors. LUKS2 never
	// uses it; it exists for other on-disk formats.
	IVLargeSectors bool
	AllowDiscards  bool
	// NoReadWorkqueue and NoWriteWorkqueue process I/O in the submitting context instead of
	// dm-crypt's workqueues, which is faster on VMs with few vCPUs and fast storage (Linux 5.9+).
	NoReadWorkqueue  bool
	NoWriteWorkqueue bool
}

// CryptParams renders the crypt target parameters:
// "<cipher> <key> <iv_offset> <dev> <offset> [<#opts> <opts>...]", the optional arguments in the
// order the kernel reports them back, so a table read with Control.Table compares equal.
func CryptParams(c Crypt) string {
	key := hex.EncodeToString(c.Key)
	if c.KeyringKey != "" {
		key = ":" + c.KeyringKey
	}
	words := []string{c.Cipher, key, strconv.FormatUint(c.IVOffset, 10), c.Dev, strconv.FormatUint(c.Offset, 10)}
	opts := c.options()
	if len(opts) > 0 {
		words = append(words, strconv.Itoa(len(opts)))
		words = append(words, opts...)
	}
	return strings.Join(words, " ")
}

func (c Crypt) options() []string {
	var opts []string
	for _, o := range []struct {
		on   bool
		word string
	}{
		{c.AllowDiscards, "allow_discards"},
		{c.NoReadWorkqueue, "no_read_workqueue"},
		{c.NoWriteWorkqueue, "no_write_workqueue"},
		{c.SectorSize != 0 && c.SectorSize != 512, "sector_size:" + strconv.FormatUint(uint64(c.SectorSize), 10)},
		{c.IVLargeSectors, "iv_large_sectors"},
	} {
		if o.on {
			opts = append(opts, o.word)
		}
	}
	return opts
}

// Validate checks the fields the way the kernel will, so a mistake is reported by name rather
// than as EINVAL from DM_TABLE_LOAD. The key itself is never part of the message.
func (c Crypt) Validate() error {
	if c.Cipher == "" || strings.ContainsAny(c.Cipher, " \t\n\x00") {
		return fmt.Errorf("crypt: invalid cipher %q", c.Cipher)
	}
	if c.KeyringKey != "" {
		parts := strings.SplitN(c.KeyringKey, ":", 3)
		if len(parts) != 3 || (parts[1] != "logon" && parts[1] != "user") || parts[2] == "" || strings.ContainsAny(c.KeyringKey, " \t\n\x00") {
			return fmt.Errorf("crypt: keyring key %q is not <size>:<logon|user>:<description>", c.KeyringKey)
		}
		if n, err := strconv.ParseUint(parts[0], 10, 16); err != nil || n == 0 {
			return fmt.Errorf("crypt: keyring key %q has no valid size", c.KeyringKey)
		}
	} else if len(c.Key) == 0 {
		return fmt.Errorf("crypt: no key")
	}
	if c.Dev == "" || strings.ContainsAny(c.Dev, " \t\n\x00") {
		return fmt.Errorf("crypt: invalid device %q", c.Dev)
	}
	ss := c.sectorSize()
	if ss < 512 || ss > 4096 || ss&(ss-1) != 0 {
		return fmt.Errorf("crypt: sector size %d is not a power of two from 512 to 4096", ss)
	}
	if per := uint64(ss / 512); c.Offset%per != 0 || (c.IVLargeSectors && c.IVOffset%per != 0) {
		return fmt.Errorf("crypt: offset %d or iv offset %d is not a multiple of the %d-byte sector", c.Offset, c.IVOffset, ss)
	}
	return nil
}

func (c Crypt) sectorSize() uint32 {
	if c.SectorSize == 0 {
		return 512
	}
	return c.SectorSize
}

// Target validates c and returns the single-target table mapping length 512-byte sectors, which
// must be whole encryption sectors (dm-crypt refuses anything else).
func (c Crypt) Target(length uint64) (Target, error) {
	if err := c.Validate(); err != nil {
		return Target{}, err
	}
	if per := uint64(c.sectorSize() / 512); length == 0 || length%per != 0 {
		return Target{}, fmt.Errorf("crypt: length %d sectors is not a positive multiple of the %d-byte sector", length, c.sectorSize())
	}
	return Target{Start: 0, Length: length, Type: "crypt", Params: CryptParams(c)}, nil
}

// redactKey hides a crypt table's key, the second parameter, for error messages and logs.
func redactKey(params string) string {
	words := strings.SplitN(params, " ", 3)
	if len(words) < 2 || strings.HasPrefix(words[1], ":") {
		return params // a keyring reference names no secret
	}
	words[1] = "<key>"
	return strings.Join(words, " ")
}
