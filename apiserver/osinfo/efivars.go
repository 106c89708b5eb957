package osinfo

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

// The Boot Loader Interface's variables that name the entry booted.
const (
	// VarBootCountPath is the path of the entry file booted, set only when its name carried a
	// boot counter (after the loader decremented it): \EFI\Linux\ballast-2-b-2.0.0+2-1.efi.
	VarBootCountPath = "LoaderBootCountPath"
	// VarEntrySelected is the ID of the entry booted; a Type #2 entry's ID is its file name.
	VarEntrySelected = "LoaderEntrySelected"
)

// maxEFIVar bounds what is read of a variable: the loader's strings are paths and file names.
const maxEFIVar = 4096

// BootEntry returns the file name of the boot entry the loader booted, from the loader's
// variables in the efivarfs at dir: the counted path when there is one (it names the file as
// it was renamed for this boot), else the selected entry's ID. Without either (no EFI, no
// systemd-boot, efivarfs not mounted) it is "".
func BootEntry(dir string) (string, error) {
	for _, name := range []string{VarBootCountPath, VarEntrySelected} {
		v, ok, err := ReadEFIString(dir, name)
		if err != nil {
			return "", err
		}
		if ok && v != "" {
			return v[strings.LastIndexAny(v, `\/`)+1:], nil
		}
	}
	return "", nil
}

// ReadEFIString reads a string variable of the Boot Loader Interface (vendor contract.LoaderGUID)
// from the efivarfs at dir: 4 bytes of attributes, then UTF-16LE ending in NUL. ok is false when
// the variable does not exist.
func ReadEFIString(dir, name string) (value string, ok bool, err error) {
	path := filepath.Join(dir, name+"-"+contract.LoaderGUID)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("EFI variable %s: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxEFIVar+1))
	if err != nil {
		return "", false, fmt.Errorf("EFI variable %s: %w", name, err)
	}
	if len(b) > maxEFIVar {
		return "", false, fmt.Errorf("EFI variable %s: more than %d bytes", name, maxEFIVar)
	}
	s, err := decodeEFIString(b)
	if err != nil {
		return "", false, fmt.Errorf("EFI variable %s: %w", name, err)
	}
	return s, true, nil
}

func decodeEFIString(b []byte) (string, error) {
	if len(b) < 4 {
		return "", fmt.Errorf("%d bytes: no attributes", len(b))
	}
	data := b[4:]
	if len(data)%2 != 0 {
		return "", fmt.Errorf("%d bytes of data: not UTF-16", len(data))
	}
	u := make([]uint16, 0, len(data)/2)
	for i := 0; i < len(data); i += 2 {
		c := binary.LittleEndian.Uint16(data[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u)), nil
}
