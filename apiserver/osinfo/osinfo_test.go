package osinfo

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/apitypes"
)

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
	}{
		{"ID=ballast\nVERSION_ID=0.1.0\n", map[string]string{"ID": "ballast", "VERSION_ID": "0.1.0"}},
		{`NAME="Ballast OS"` + "\n" + `PRETTY_NAME='A \ B'`, map[string]string{"NAME": "Ballast OS", "PRETTY_NAME": `A \ B`}},
		{`X="say \"hi\" \$HOME \\ done"`, map[string]string{"X": `say "hi" $HOME \ done`}},
		{"# comment\n\n  BUILD_ID=abc  \nnot an assignment\nBAD=\"open\nK V=1\n", map[string]string{"BUILD_ID": "abc"}},
		{"EMPTY=\nEMPTYQ=\"\"", map[string]string{"EMPTY": "", "EMPTYQ": ""}},
	}
	for _, tt := range tests {
		if got := ParseOSRelease([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseOSRelease(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseCmdline(t *testing.T) {
	got := ParseCmdline("console=ttyS0 quiet roothash=ab12 ballast.slot=a ballast.slot=b x=\"y\"\n")
	want := map[string]string{"console": "ttyS0", "quiet": "", "roothash": "ab12", "ballast.slot": "b", "x": "y"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseCmdline = %q, want %q", got, want)
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	rel, cmd := filepath.Join(dir, "os-release"), filepath.Join(dir, "cmdline")
	os.WriteFile(rel, []byte("ID=ballast\nNAME=Ballast\nVERSION_ID=0.1.0\nVARIANT_ID=qemu\nBUILD_ID=b42\n"), 0o644)
	hash := strings.Repeat("ab", 32)
	os.WriteFile(cmd, []byte("console=ttyS0 roothash="+hash+" ballast.slot=a ballast.root=x\n"), 0o644)
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
	// The default uname must work on any Linux.
	if k, err := unameRelease(); err != nil || k == "" {
		t.Fatalf("unameRelease = %q, %v", k, err)
	}
}
