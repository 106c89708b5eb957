package esp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf16"

	"github.com/ballast-os/ballast/contract"
)

// Boot Loader Interface variables systemd-boot sets (vendor contract.LoaderGUID).
const (
	// VarBootCountPath is the path of the entry file booted, as renamed for this boot, when the
	// entry has a boot counter: `\EFI\Linux\ballast-2-b-2.0.0+2-1.efi`.
	VarBootCountPath = "LoaderBootCountPath"
	// VarEntrySelected is the ID of the entry booted; for a Type #2 entry its file name.
	VarEntrySelected = "LoaderEntrySelected"
)

// efiAttrSize is the attribute word efivarfs puts before a variable's value.
const efiAttrSize = 4

// ReadLoaderVariable reads a string variable of the Boot Loader Interface from efivarfs mounted
// at dir (contract.EFIVarsMount on a host). A missing variable is an error wrapping
// fs.ErrNotExist.
func ReadLoaderVariable(dir, name string) (string, error) {
	path := filepath.Join(dir, name+"-"+contract.LoaderGUID)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("esp: loader variable: %w", err)
	}
	s, err := decodeUTF16Var(b)
	if err != nil {
		return "", fmt.Errorf("esp: loader variable %s: %w", path, err)
	}
	return s, nil
}

// decodeUTF16Var reads an efivarfs file holding a UTF-16LE string, NUL-terminated or not.
func decodeUTF16Var(b []byte) (string, error) {
	if len(b) < efiAttrSize || (len(b)-efiAttrSize)%2 != 0 {
		return "", fmt.Errorf("%d bytes: not 4 attribute bytes and a UTF-16 string", len(b))
	}
	b = b[efiAttrSize:]
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

// EncodeLoaderVariable is the efivarfs file content of a string variable as systemd-boot sets it
// (boot-service and runtime access, volatile): for tests and tools that fake a boot.
func EncodeLoaderVariable(s string) []byte {
	const attrs = 0x6 // EFI_VARIABLE_BOOTSERVICE_ACCESS | EFI_VARIABLE_RUNTIME_ACCESS
	u := utf16.Encode([]rune(s))
	b := make([]byte, efiAttrSize, efiAttrSize+2*len(u)+2)
	binary.LittleEndian.PutUint32(b, attrs)
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return append(b, 0, 0)
}

// BootedEntry returns the file name of the boot entry this boot came from, as the loader named
// it at boot: from LoaderBootCountPath when the entry had a boot counter, else from
// LoaderEntrySelected. Neither variable set (another loader, or no EFI) is an error wrapping
// fs.ErrNotExist; a name that is not a Ballast entry is returned as it is.
func BootedEntry(efivars string) (string, error) {
	p, err := ReadLoaderVariable(efivars, VarBootCountPath)
	if err == nil && p != "" {
		return baseName(p), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	id, err := ReadLoaderVariable(efivars, VarEntrySelected)
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", fmt.Errorf("esp: loader variable %s is empty: %w", VarEntrySelected, fs.ErrNotExist)
	}
	return baseName(id), nil
}

// baseName is the last element of a loader path, which uses backslashes.
func baseName(p string) string {
	p = strings.ReplaceAll(p, `\`, "/")
	return p[strings.LastIndex(p, "/")+1:]
}
