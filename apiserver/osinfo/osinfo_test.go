package osinfo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/efivar"
)

// efiVar writes a loader variable as efivarfs shows it: attributes, then UTF-16LE and a NUL.
func efiVar(t *testing.T, dir, name, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name+"-"+contract.LoaderGUID), efivar.EncodeString(value), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	rel, cmd := filepath.Join(dir, "os-release"), filepath.Join(dir, "cmdline")
	efi := filepath.Join(dir, "efivars")
	os.Mkdir(efi, 0o755)
	os.WriteFile(rel, []byte("ID=ballast\nNAME=Ballast\nVERSION_ID=0.1.0\nVARIANT_ID=qemu\nBUILD_ID=b42\n"), 0o644)
	hash := strings.Repeat("ab", 32)
	os.WriteFile(cmd, []byte("console=ttyS0 roothash="+hash+" ballast.slot=\"a\" ballast.root=x\n"), 0o644)
	src := Sources{OSRelease: rel, Cmdline: cmd, Kernel: func() (string, error) { return "6.12.0", nil },
		Image: filepath.Join(dir, "image.json"), EFIVars: efi, Machine: func() (string, error) { return "x86_64", nil }}
	got, err := Read(src)
	if err != nil {
		t.Fatal(err)
	}
	// No image.json and no loader variables: the kernel's machine, no entry.
	want := apitypes.OS{Version: "0.1.0", Variant: "qemu", Slot: "a", RootHash: hash, Kernel: "6.12.0", Arch: "x86_64", BuildID: "b42",
		SecureBoot: "unsupported"}
	if got != want {
		t.Fatalf("Read = %+v, want %+v", got, want)
	}

	// The image's own architecture wins; the loader names the entry.
	os.WriteFile(src.Image, []byte(`{"variant":"qemu","version":"0.1.0","arch":"amd64","updates":{"tries":3}}`), 0o644)
	efiVar(t, efi, efivar.LoaderEntrySelected, "ballast-1-a-0.1.0.efi")
	want.Arch, want.Entry = "amd64", "ballast-1-a-0.1.0.efi"
	if got, err := Read(src); err != nil || got != want {
		t.Fatalf("Read = %+v, %v, want %+v", got, err, want)
	}
	// The firmware enforces Secure Boot.
	for name, b := range map[string]byte{efivar.SecureBootVar: 1, efivar.SetupModeVar: 0} {
		os.WriteFile(filepath.Join(efi, name+"-"+efivar.GlobalGUID), []byte{6, 0, 0, 0, b}, 0o644)
	}
	want.SecureBoot = "enabled"
	if got, err := Read(src); err != nil || got != want {
		t.Fatalf("Read = %+v, %v, want %+v", got, err, want)
	}
	os.WriteFile(filepath.Join(efi, efivar.SecureBootVar+"-"+efivar.GlobalGUID), []byte{6, 0, 0, 0, 7}, 0o644)
	if _, err := Read(src); err == nil || !strings.Contains(err.Error(), "secure boot: efi variable SecureBoot") {
		t.Fatalf("malformed SecureBoot: err = %v", err)
	}
	os.Remove(filepath.Join(efi, efivar.SecureBootVar+"-"+efivar.GlobalGUID))
	want.SecureBoot = "unsupported"

	os.WriteFile(src.Image, []byte(`{"variant":`), 0o644)
	if _, err := Read(src); err == nil || !strings.Contains(err.Error(), "image.json") {
		t.Fatalf("malformed image.json: err = %v", err)
	}
	os.Remove(src.Image)

	if _, err := Read(Sources{OSRelease: filepath.Join(dir, "missing"), Cmdline: cmd}); err == nil || !strings.Contains(err.Error(), "os-release") {
		t.Fatalf("missing os-release: err = %v", err)
	}
	os.WriteFile(rel, []byte("ID=ballast\nNAME=\"unterminated\n"), 0o644)
	if _, err := Read(Sources{OSRelease: rel, Cmdline: cmd}); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("malformed os-release: err = %v, want the line", err)
	}
	// The default uname must work on any Linux.
	var s Sources
	s.defaults()
	for name, f := range map[string]func() (string, error){"release": s.Kernel, "machine": s.Machine} {
		if v, err := f(); err != nil || v == "" {
			t.Fatalf("uname %s = %q, %v", name, v, err)
		}
	}
}

func TestBootEntry(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string // variables written as the loader writes them
		raw  map[string][]byte // variables written byte for byte
		want string
		err  string
	}{
		{name: "no variables", want: ""},
		{name: "selected only", vars: map[string]string{efivar.LoaderEntrySelected: "ballast-1-a-1.0.0.efi"}, want: "ballast-1-a-1.0.0.efi"},
		// A trial boot: the counted path names the file as renamed for this boot.
		{name: "counted path wins", vars: map[string]string{efivar.LoaderEntrySelected: "ballast-2-b-2.0.0.efi",
			efivar.LoaderBootCountPath: `\EFI\Linux\ballast-2-b-2.0.0+2-1.efi`}, want: "ballast-2-b-2.0.0+2-1.efi"},
		{name: "non-ascii", vars: map[string]string{efivar.LoaderEntrySelected: "entrée.efi"}, want: "entrée.efi"},
		{name: "no terminator", raw: map[string][]byte{efivar.LoaderEntrySelected: {7, 0, 0, 0, 'a', 0, '.', 0, 'e', 0}}, want: "a.e"},
		{name: "odd length", raw: map[string][]byte{efivar.LoaderEntrySelected: {7, 0, 0, 0, 'a', 0, 'b'}}, err: "LoaderEntrySelected: 3 bytes is not UTF-16"},
		{name: "no attributes", raw: map[string][]byte{efivar.LoaderBootCountPath: {7, 0}}, err: "2 bytes, shorter than its attributes"},
		{name: "too long", raw: map[string][]byte{efivar.LoaderEntrySelected: make([]byte, 1<<20+6)}, err: "longer than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, v := range tt.vars {
				efiVar(t, dir, n, v)
			}
			for n, b := range tt.raw {
				os.WriteFile(filepath.Join(dir, n+"-"+contract.LoaderGUID), b, 0o644)
			}
			got, err := BootEntry(dir)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("BootEntry = %q, %v; want error %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("BootEntry = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	// efivarfs not mounted at all.
	if got, err := BootEntry(filepath.Join(t.TempDir(), "none")); err != nil || got != "" {
		t.Fatalf("BootEntry without efivarfs = %q, %v", got, err)
	}
}
