package system

import (
	"reflect"
	"strings"
	"testing"
)

func TestReadImage(t *testing.T) {
	img, err := ReadImage("testdata/image.json")
	if err != nil {
		t.Fatal(err)
	}
	want := Image{
		Variant: "qemu", Version: "0.1.0", Dev: true,
		Services: []string{"apiserver", "console-shell"},
		Modules:  []string{"virtio_net", "button", "evdev"},
		Kernel:   "6.1.0-50-cloud-amd64",
	}
	if !reflect.DeepEqual(img, want) {
		t.Errorf("ReadImage = %+v, want %+v", img, want)
	}
	if _, err := ReadImage("testdata/missing.json"); err == nil {
		t.Error("ReadImage of a missing file succeeded")
	}
}

func TestReadOSRelease(t *testing.T) {
	got, err := ReadOSRelease("testdata/os-release")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ID": "ballast", "NAME": "Ballast", "PRETTY_NAME": "Ballast 0.1.0 (qemu)",
		"VERSION_ID": "0.1.0", "VARIANT_ID": "qemu", "BUILD_ID": `b"1\2$`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("os-release = %q, want %q", got, want)
	}
}

func TestParseOSReleaseErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no equals", "ID ballast\n", "line 1: not KEY=value"},
		{"unterminated", "ID=ballast\nNAME=\"Ballast\n", "line 2: NAME: unterminated quote"},
		{"text after quote", `NAME="a"b`, "text after the closing quote"},
		{"single unterminated", "NAME='a\n", "unterminated quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseOSRelease(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseCmdline(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	tests := []struct {
		name, in string
		want     map[string]string
	}{
		{"contract", "console=ttyS0,115200n8 quiet roothash=" + hash + " ballast.slot=a ballast.verity.blocks=1234\n",
			map[string]string{"console": "ttyS0,115200n8", "quiet": "", "roothash": hash, "ballast.slot": "a", "ballast.verity.blocks": "1234"}},
		{"quoted", `motd="hello world" x=1`, map[string]string{"motd": "hello world", "x": "1"}},
		{"last wins", "ballast.slot=a ballast.slot=b", map[string]string{"ballast.slot": "b"}},
		{"value with equals", "a=b=c", map[string]string{"a": "b=c"}},
		{"empty", "  \n", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseCmdline(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseCmdline(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
