// Package efivar reads UEFI variables from efivarfs, where each variable is a file named
// <Name>-<vendor GUID> holding the variable's 4-byte attributes (little-endian) and then its data.
// It knows the Boot Loader Interface variables systemd-boot sets for the booted OS: which entry it
// booted, with or without a boot counter, and the partition it was loaded from.
package efivar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf16"

	"github.com/ballast-os/ballast/contract"
)

// Boot Loader Interface variables (vendor contract.LoaderGUID).
const (
	// LoaderBootCountPath is the ESP path of the entry file booted, set only when its name carried
	// a boot counter (which the loader has decremented in the file's name by then).
	LoaderBootCountPath = "LoaderBootCountPath"
	// LoaderEntrySelected is the identifier of the entry booted.
	LoaderEntrySelected = "LoaderEntrySelected"
	// LoaderDevicePartUUID is the PARTUUID of the partition the loader was loaded from: the ESP.
	LoaderDevicePartUUID = "LoaderDevicePartUUID"
)

// attrSize is the attribute word in front of a variable's data.
const attrSize = 4

// maxSize bounds what Read takes: the Boot Loader Interface's variables are short strings, and
// firmware stores are a few hundred KiB at most.
const maxSize = 1 << 20

// Vars reads variables from an efivarfs directory.
type Vars struct {
	Dir string // [contract.EFIVarsMount]
}

func (v Vars) dir() string {
	if v.Dir == "" {
		return contract.EFIVarsMount
	}
	return v.Dir
}

// Path is the efivarfs file of a variable.
func (v Vars) Path(name, guid string) string {
	return filepath.Join(v.dir(), name+"-"+strings.ToLower(guid))
}

// Read returns a variable's attributes and data. A variable that is not set is an error wrapping
// fs.ErrNotExist.
func (v Vars) Read(name, guid string) (attrs uint32, data []byte, err error) {
	p := v.Path(name, guid)
	f, err := os.Open(p)
	if err != nil {
		return 0, nil, fmt.Errorf("efi variable %s: %w", name, err)
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return 0, nil, fmt.Errorf("efi variable %s (%s): %w", name, p, err)
	}
	n := len(buf)
	if n > maxSize {
		return 0, nil, fmt.Errorf("efi variable %s (%s): longer than %d bytes", name, p, maxSize)
	}
	if n < attrSize {
		return 0, nil, fmt.Errorf("efi variable %s (%s): %d bytes, shorter than its attributes", name, p, n)
	}
	return binary.LittleEndian.Uint32(buf[:attrSize]), buf[attrSize:n:n], nil
}

// String reads a variable holding a UTF-16LE string, NUL-terminated as the loader writes it (a
// missing NUL is accepted; anything after the first NUL is ignored).
func (v Vars) String(name, guid string) (string, error) {
	_, data, err := v.Read(name, guid)
	if err != nil {
		return "", err
	}
	s, err := DecodeUTF16(data)
	if err != nil {
		return "", fmt.Errorf("efi variable %s: %w", name, err)
	}
	return s, nil
}

// DecodeUTF16 decodes UTF-16LE bytes up to the first NUL.
func DecodeUTF16(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", fmt.Errorf("%d bytes is not UTF-16", len(b))
	}
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u)), nil
}

// EncodeUTF16 is a NUL-terminated UTF-16LE string, as the loader writes its variables.
func EncodeUTF16(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(u)+2)
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return append(b, 0, 0)
}

// Loader reads the Boot Loader Interface variables.
type Loader struct {
	Vars Vars
}

// BootCountPath is LoaderBootCountPath: the booted entry file's path on the ESP, as the loader
// writes it (`\EFI\Linux\<name>.efi`). An entry without a boot counter leaves it unset, which is
// an error wrapping fs.ErrNotExist.
func (l Loader) BootCountPath() (string, error) {
	s, err := l.Vars.String(LoaderBootCountPath, contract.LoaderGUID)
	if err == nil && s == "" {
		return "", fmt.Errorf("efi variable %s: empty", LoaderBootCountPath)
	}
	return s, err
}

// EntrySelected is LoaderEntrySelected: the identifier of the booted entry (for a Type #2 entry,
// its file name).
func (l Loader) EntrySelected() (string, error) {
	s, err := l.Vars.String(LoaderEntrySelected, contract.LoaderGUID)
	if err == nil && s == "" {
		return "", fmt.Errorf("efi variable %s: empty", LoaderEntrySelected)
	}
	return s, err
}

// DevicePartUUID is LoaderDevicePartUUID, the ESP's PARTUUID, in the lower-case canonical form
// (the loader writes it in upper case).
func (l Loader) DevicePartUUID() (string, error) {
	s, err := l.Vars.String(LoaderDevicePartUUID, contract.LoaderGUID)
	if err != nil {
		return "", err
	}
	u, err := contract.ParseUUID(s)
	if err != nil {
		return "", fmt.Errorf("efi variable %s: %w", LoaderDevicePartUUID, err)
	}
	return u.String(), nil
}

// ESPFile turns a loader path (`\EFI\Linux\x.efi`) into a path relative to the ESP's root with
// forward slashes ("EFI/Linux/x.efi"). Empty components, "." and ".." are refused: the path names
// a file the OS is about to rename.
func ESPFile(loaderPath string) (string, error) {
	parts := strings.Split(strings.TrimPrefix(loaderPath, `\`), `\`)
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || strings.Contains(p, "/") {
			return "", fmt.Errorf("loader path %q: not a plain path on the ESP", loaderPath)
		}
	}
	return strings.Join(parts, "/"), nil
}

// BootedEntry is the file name of the boot entry this boot came from, as the loader named it at
// boot: from LoaderBootCountPath when the entry had a boot counter (the name as renamed for this
// boot), else from LoaderEntrySelected. Neither set (another loader, no EFI, efivarfs not
// mounted) is an error wrapping fs.ErrNotExist.
func (l Loader) BootedEntry() (string, error) {
	p, err := l.BootCountPath()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err != nil {
		if p, err = l.EntrySelected(); err != nil {
			return "", err
		}
	}
	return p[strings.LastIndexAny(p, `\/`)+1:], nil
}

// EncodeString is the efivarfs file of a string variable as systemd-boot sets it (boot-service
// and runtime access, volatile), for tests and tools that stand in for a boot.
func EncodeString(s string) []byte {
	const attrs = 0x6 // EFI_VARIABLE_BOOTSERVICE_ACCESS | EFI_VARIABLE_RUNTIME_ACCESS
	return append(binary.LittleEndian.AppendUint32(nil, attrs), EncodeUTF16(s)...)
}
