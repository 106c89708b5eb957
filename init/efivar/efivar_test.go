package efivar

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/contract"
)

// Attributes systemd-boot gives its volatile variables: boot service and runtime access.
const bsRT = 0x6

// setVar writes a variable file as efivarfs shows it.
func setVar(t *testing.T, dir, name string, attrs uint32, data []byte) {
	t.Helper()
	b := binary.LittleEndian.AppendUint32(nil, attrs)
	b = append(b, data...)
	if err := os.WriteFile(filepath.Join(dir, name+"-"+contract.LoaderGUID), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	setVar(t, dir, "Answer", bsRT, []byte{42, 0})
	v := Vars{Dir: dir}
	attrs, data, err := v.Read("Answer", strings.ToUpper(contract.LoaderGUID))
	if err != nil || attrs != bsRT || string(data) != "\x2a\x00" {
		t.Errorf("Read = %#x %q %v", attrs, data, err)
	}
	if _, _, err := v.Read("Missing", contract.LoaderGUID); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing variable: %v, want fs.ErrNotExist", err)
	}
	os.WriteFile(filepath.Join(dir, "Short-"+contract.LoaderGUID), []byte{1, 2}, 0o644)
	if _, _, err := v.Read("Short", contract.LoaderGUID); err == nil || !strings.Contains(err.Error(), "Short") {
		t.Errorf("a 2-byte file: %v", err)
	}
}

func TestUTF16(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
		err  bool
	}{
		{"terminated", EncodeUTF16(`\EFI\Linux\ballast-2-b-2.0.0+2-1.efi`), `\EFI\Linux\ballast-2-b-2.0.0+2-1.efi`, false},
		{"no NUL", []byte{'a', 0, 'b', 0}, "ab", false},
		{"stops at the first NUL", []byte{'a', 0, 0, 0, 'b', 0}, "a", false},
		{"surrogate pair", EncodeUTF16("x\U0001F600"), "x\U0001F600", false},
		{"empty", nil, "", false},
		{"odd length", []byte{'a', 0, 'b'}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeUTF16(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("DecodeUTF16(%v) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestLoader(t *testing.T) {
	dir := t.TempDir()
	l := Loader{Vars: Vars{Dir: dir}}
	if _, err := l.BootCountPath(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unset LoaderBootCountPath: %v", err)
	}
	setVar(t, dir, LoaderBootCountPath, bsRT, EncodeUTF16(`\EFI\Linux\ballast-2-b-2.0.0+2-1.efi`))
	setVar(t, dir, LoaderEntrySelected, bsRT, EncodeUTF16("ballast-2-b-2.0.0+2-1.efi"))
	setVar(t, dir, LoaderDevicePartUUID, bsRT, EncodeUTF16("0B9A2F14-3C5D-4E6F-8A7B-9C0D1E2F3A4B"))
	if p, err := l.BootCountPath(); err != nil || p != `\EFI\Linux\ballast-2-b-2.0.0+2-1.efi` {
		t.Errorf("BootCountPath = %q, %v", p, err)
	}
	if e, err := l.EntrySelected(); err != nil || e != "ballast-2-b-2.0.0+2-1.efi" {
		t.Errorf("EntrySelected = %q, %v", e, err)
	}
	if u, err := l.DevicePartUUID(); err != nil || u != "0b9a2f14-3c5d-4e6f-8a7b-9c0d1e2f3a4b" {
		t.Errorf("DevicePartUUID = %q, %v", u, err)
	}
	setVar(t, dir, LoaderDevicePartUUID, bsRT, EncodeUTF16("not-a-uuid"))
	if _, err := l.DevicePartUUID(); err == nil || !strings.Contains(err.Error(), LoaderDevicePartUUID) {
		t.Errorf("malformed PARTUUID: %v", err)
	}
	setVar(t, dir, LoaderBootCountPath, bsRT, EncodeUTF16(""))
	if _, err := l.BootCountPath(); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty LoaderBootCountPath: %v", err)
	}
}

func TestESPFile(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{`\EFI\Linux\ballast-2-b-2.0.0+2-1.efi`, "EFI/Linux/ballast-2-b-2.0.0+2-1.efi", false},
		{`EFI\Linux\x.efi`, "EFI/Linux/x.efi", false},
		{`\EFI\..\x.efi`, "", true},
		{`\EFI\\x.efi`, "", true},
		{`\EFI\a/b.efi`, "", true},
		{``, "", true},
	}
	for _, tt := range tests {
		got, err := ESPFile(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ESPFile(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestBootedEntry(t *testing.T) {
	dir := t.TempDir()
	l := Loader{Vars: Vars{Dir: dir}}
	if _, err := l.BootedEntry(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("BootedEntry without variables: %v", err)
	}
	set := func(name, value string) {
		t.Helper()
		if err := os.WriteFile(l.Vars.Path(name, contract.LoaderGUID), EncodeString(value), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set(LoaderEntrySelected, "ballast-1-a-1.0.efi")
	if got, err := l.BootedEntry(); err != nil || got != "ballast-1-a-1.0.efi" {
		t.Fatalf("BootedEntry from %s = %q, %v", LoaderEntrySelected, got, err)
	}
	// A trial boot: the counted path names the file as renamed for this boot.
	set(LoaderBootCountPath, `\EFI\Linux\ballast-2-b-2.0+2-1.efi`)
	if got, err := l.BootedEntry(); err != nil || got != "ballast-2-b-2.0+2-1.efi" {
		t.Fatalf("BootedEntry from %s = %q, %v", LoaderBootCountPath, got, err)
	}
	// What efivarfs shows: attributes first, then UTF-16LE with a final NUL.
	if raw, want := EncodeString("ab"), []byte{6, 0, 0, 0, 'a', 0, 'b', 0, 0, 0}; !bytes.Equal(raw, want) {
		t.Errorf("EncodeString = %v, want %v", raw, want)
	}
	os.WriteFile(l.Vars.Path(LoaderBootCountPath, contract.LoaderGUID), []byte{6, 0, 0, 0, 'a'}, 0o644)
	if _, err := l.BootedEntry(); err == nil {
		t.Error("a variable of odd length was read")
	}
}
