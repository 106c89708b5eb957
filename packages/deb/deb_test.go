package deb

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

// buildDeb makes a real package with dpkg-deb, so the reader is checked against Debian's own writer.
func buildDeb(t *testing.T, compression string) string {
	t.Helper()
	bin := testutil.Tool(t, "dpkg-deb", "dpkg")
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755)
	os.WriteFile(filepath.Join(root, "DEBIAN", "control"), []byte("Package: t\nVersion: 1\nArchitecture: all\nMaintainer: x <x@example.org>\nDescription: test\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "usr", "bin"), 0o755)
	os.WriteFile(filepath.Join(root, "usr", "bin", "tool"), []byte("#!tool\n"), 0o755)
	os.Symlink("tool", filepath.Join(root, "usr", "bin", "alias"))
	out := filepath.Join(t.TempDir(), "t.deb")
	testutil.Run(t, bin, "--root-owner-group", "-Z"+compression, "--build", root, out)
	return out
}

func TestWalkRealPackages(t *testing.T) {
	for _, comp := range []string{"xz", "gzip", "zstd", "none"} {
		t.Run(comp, func(t *testing.T) {
			path := buildDeb(t, comp)
			f, _ := os.Open(path)
			defer f.Close()
			var names []string
			err := Walk(f, func(h *tar.Header, body io.Reader) error {
				names = append(names, h.Name)
				if h.Name == "usr/bin/alias" && (h.Typeflag != tar.TypeSymlink || h.Linkname != "tool") {
					t.Errorf("alias: %+v", h)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(names)
			if got := strings.Join(names, ","); !strings.Contains(got, "usr/bin/alias") || !strings.Contains(got, "usr/bin/tool") {
				t.Fatalf("entries %s", got)
			}
			f.Seek(0, io.SeekStart)
			b, err := ReadFile(f, "usr/bin/tool")
			if err != nil || string(b) != "#!tool\n" {
				t.Fatalf("ReadFile: %q %v", b, err)
			}
		})
	}
}

func TestWalkRejectsGarbage(t *testing.T) {
	cases := map[string][]byte{
		"not ar":    []byte("hello"),
		"no data":   []byte(arMagic),
		"bad entry": append([]byte(arMagic), bytes.Repeat([]byte("x"), 60)...),
	}
	for name, in := range cases {
		if err := Walk(bytes.NewReader(in), func(*tar.Header, io.Reader) error { return nil }); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
