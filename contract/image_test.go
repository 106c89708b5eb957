package contract

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestOSReleaseRoundTrip(t *testing.T) {
	r := OSRelease{Version: "1.2.3", Variant: "qemu", BuildID: "abcdef012345"}
	vars, err := ParseOSRelease(r.Format())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"NAME": "Ballast", "ID": "ballast", "PRETTY_NAME": "Ballast 1.2.3 (qemu)",
		"VERSION_ID": "1.2.3", "VARIANT_ID": "qemu", "BUILD_ID": "abcdef012345", "HOME_URL": HomeURL}
	if !reflect.DeepEqual(vars, want) {
		t.Errorf("got %q\nwant %q", vars, want)
	}
}

// A UKI's .osrel names the entry for the boot menu and says nothing systemd-boot would sort by.
func TestEntryOSRelease(t *testing.T) {
	r := OSRelease{Version: "1.2.3", Variant: "qemu", BuildID: "abcdef012345"}
	for _, slot := range []Slot{SlotA, SlotB} {
		vars, err := ParseOSRelease(r.EntryOSRelease(slot))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"PRETTY_NAME": "Ballast 1.2.3 (qemu, slot " + string(slot) + ")", "VERSION": "1.2.3"}
		if !reflect.DeepEqual(vars, want) {
			t.Errorf("slot %s: got %q\nwant %q", slot, vars, want)
		}
	}
}

func TestParseOSRelease(t *testing.T) {
	got, err := ParseOSRelease([]byte("# comment\n\nID=ballast\nNAME='Ballast OS'\nBUILD_ID=\"b\\\"1\\\\2\\$\"\nEMPTY=\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ID": "ballast", "NAME": "Ballast OS", "BUILD_ID": `b"1\2$`, "EMPTY": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, tt := range []struct{ in, want string }{
		{"ID ballast\n", "line 1: not KEY=value"},
		{"ID=ballast\nNAME=\"Ballast\n", "line 2: NAME: unterminated quote"},
		{`NAME="a"b`, "text after the closing quote"},
		{"NAME='a\n", "unterminated quote"},
	} {
		if _, err := ParseOSRelease([]byte(tt.in)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestImageRoundTrip(t *testing.T) {
	root := t.TempDir()
	img := Image{Variant: "qemu", Version: "0.1.0", Dev: true, Services: []string{"network", "apiserver"},
		Modules: []string{"virtio_net"}, Kernel: "6.1.0-50-cloud-amd64"}
	b, err := img.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, ImageInfoPath)
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, b, 0o644)
	got, err := ReadImage(root)
	if err != nil || !reflect.DeepEqual(got, img) {
		t.Errorf("ReadImage = %+v, %v; want %+v", got, err, img)
	}
	os.WriteFile(p, []byte("{"), 0o644)
	if _, err := ReadImage(root); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("broken image.json: err %v, want it to name %s", err, p)
	}
}

// The ready line and GET /os come from the same Identity; a quoted slot on the command line must
// not make them differ.
func TestIdentity(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755)
	os.MkdirAll(filepath.Join(root, "proc"), 0o755)
	os.WriteFile(filepath.Join(root, OSReleasePath), OSRelease{Version: "0.2.0", Variant: "qemu", BuildID: "b1"}.Format(), 0o644)
	os.WriteFile(filepath.Join(root, "proc/cmdline"), []byte(`console=ttyS0 ballast.slot="b" roothash=`+strings.Repeat("cd", 32)+"\n"), 0o644)
	id, err := ReadIdentity(root)
	if err != nil {
		t.Fatal(err)
	}
	want := Identity{Version: "0.2.0", Variant: "qemu", BuildID: "b1", Slot: "b", RootHash: strings.Repeat("cd", 32)}
	if id != want {
		t.Errorf("ReadIdentity = %+v, want %+v", id, want)
	}
	line := id.ReadyLine()
	if line != "version=0.2.0 variant=qemu slot=b roothash="+want.RootHash {
		t.Errorf("ReadyLine = %q", line)
	}
	back, err := ParseReadyLine(line)
	want.BuildID = ""
	if err != nil || back != want {
		t.Errorf("ParseReadyLine = %+v, %v", back, err)
	}
	if (Identity{}).ReadyLine() != "version=unknown variant=unknown slot=unknown roothash=unknown" {
		t.Errorf("empty identity: %q", (Identity{}).ReadyLine())
	}
	if _, err := ParseReadyLine("version=1 variant=q slot=a"); err == nil || !strings.Contains(err.Error(), "roothash") {
		t.Errorf("ParseReadyLine without roothash: %v", err)
	}
}
