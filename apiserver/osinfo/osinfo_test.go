package osinfo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/apitypes"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	rel, cmd := filepath.Join(dir, "os-release"), filepath.Join(dir, "cmdline")
	os.WriteFile(rel, []byte("ID=ballast\nNAME=Ballast\nVERSION_ID=0.1.0\nVARIANT_ID=qemu\nBUILD_ID=b42\n"), 0o644)
	hash := strings.Repeat("ab", 32)
	os.WriteFile(cmd, []byte("console=ttyS0 roothash="+hash+" ballast.slot=\"a\" ballast.root=x\n"), 0o644)
	got, err := Read(Sources{OSRelease: rel, Cmdline: cmd, Kernel: func() (string, error) { return "6.12.0", nil }})
	if err != nil {
		t.Fatal(err)
	}
	want := apitypes.OS{Version: "0.1.0", Variant: "qemu", Slot: "a", RootHash: hash, Kernel: "6.12.0", BuildID: "b42"}
	if got != want {
		t.Fatalf("Read = %+v, want %+v", got, want)
	}
	if _, err := Read(Sources{OSRelease: filepath.Join(dir, "missing"), Cmdline: cmd}); err == nil || !strings.Contains(err.Error(), "os-release") {
		t.Fatalf("missing os-release: err = %v", err)
	}
	os.WriteFile(rel, []byte("ID=ballast\nNAME=\"unterminated\n"), 0o644)
	if _, err := Read(Sources{OSRelease: rel, Cmdline: cmd}); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("malformed os-release: err = %v, want the line", err)
	}
	// The default uname must work on any Linux.
	if k, err := unameRelease(); err != nil || k == "" {
		t.Fatalf("unameRelease = %q, %v", k, err)
	}
}
